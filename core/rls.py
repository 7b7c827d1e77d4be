"""The one place that sets the row-level-security scope (DESIGN §9).

Policies (migration numbering 0003) read `app.scope` and `app.tenant_id`. They are set
with set_config(..., is_local => true), so they last until the end of the surrounding
transaction and never leak to the next user of a pooled connection. On a clean exit
the previous values are restored, so scopes nest (a platform job inside a test
transaction, a service call inside a tenant request).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from django.db import connections, transaction

from core import after_commit
from core.actors import Actor

PLATFORM = "platform"
TENANT = "tenant"
# The one statement that sets the scope (`true` = is_local: until the transaction ends), and
# the same statement reading the scope it replaces.
_SET = "SELECT set_config('app.scope', %s, true), set_config('app.tenant_id', %s, true)"
_SAVE_AND_SET = _SET.replace(
    "SELECT", "SELECT current_setting('app.scope', true), current_setting('app.tenant_id', true),", 1
)


def _values(*, platform: bool, tenant_id: uuid.UUID | str | None) -> list[str]:
    if platform == (tenant_id is not None):
        raise ValueError("choose exactly one of platform=True or tenant_id")
    return [PLATFORM, ""] if platform else [TENANT, str(uuid.UUID(str(tenant_id)))]


def _actor_scope(actor: Actor) -> dict[str, Any]:
    """Tenants, and services acting for one tenant, see that tenant's rows plus AVAILABLE
    inventory; everyone else sees all."""
    if actor.acts_for_tenant:
        return {"platform": False, "tenant_id": actor.tenant_id}
    return {"platform": True, "tenant_id": None}


@contextmanager
def rls_scope(
    *, platform: bool = False, tenant_id: uuid.UUID | str | None = None, using: str = "default"
) -> Iterator[None]:
    values = _values(platform=platform, tenant_id=tenant_id)
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("rls_scope must be entered inside transaction.atomic()")
    with connection.cursor() as cursor:
        cursor.execute(_SAVE_AND_SET, values)
        previous_scope, previous_tenant, _, _ = cursor.fetchone()
    yield
    # After an exception the savepoint rollback already undid set_config.
    if not connection.needs_rollback:
        with connection.cursor() as cursor:
            cursor.execute(_SET, [previous_scope or "", previous_tenant or ""])


def scope_for(actor: Actor, using: str = "default") -> AbstractContextManager[None]:
    """The actor's scope (_actor_scope), restored on exit."""
    return rls_scope(**_actor_scope(actor), using=using)


@contextmanager
def scoped_transaction(actor: Actor, using: str = "default") -> Iterator[None]:
    """`transaction.atomic()` + `scope_for(actor)` in one, for a unit of work whose scope ends
    with its transaction (every lifecycle action, ADR 1100). Opened outside any transaction,
    the scope is one set_config statement and needs no restore: is_local settings end with
    the transaction, and its after-commit Redis writes are sent together (core.after_commit).
    Nested inside one, it is a savepoint plus the usual save-and-restore."""
    connection = connections[using]
    if connection.in_atomic_block:
        with transaction.atomic(using=using), scope_for(actor, using=using):
            yield
        return
    # The Redis writes the unit of work leaves for after its commit go out in one round trip.
    with after_commit.batched(), transaction.atomic(using=using):
        scope_until_commit(actor, using=using)
        yield


def scope_until_commit(actor: Actor, using: str = "default") -> None:
    """scope_for(actor) for the rest of the transaction just opened, as one set_config
    statement with nothing to restore: only for a caller whose transaction is the outermost
    one and ends right after its work (scoped_transaction, a REST request's own transaction),
    so no statement of that transaction runs after the work under a scope it did not ask for."""
    connection = connections[using]
    if len(connection.atomic_blocks) != 1:
        raise RuntimeError("scope_until_commit needs the outermost transaction, freshly opened")
    with connection.cursor() as cursor:
        cursor.execute(_SET, _values(**_actor_scope(actor)))


def scope_rest_of_transaction(actor: Actor, using: str = "default") -> AbstractContextManager[None] | None:
    """scope_for(actor) from here to the end of the work, for a caller that has already opened
    its transaction (a REST request's, core.api.views): the outermost one gets
    scope_until_commit and None back; a nested one (a test's transaction around the request)
    gets scope_for entered and returned, for the caller to exit, which restores the scope."""
    if len(connections[using].atomic_blocks) == 1:
        scope_until_commit(actor, using=using)
        return None
    scope = scope_for(actor, using=using)
    scope.__enter__()
    return scope
