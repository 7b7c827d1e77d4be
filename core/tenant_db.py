"""Tenant-scoped work runs as the restricted database role (issue 13 item 6, ADR 1352).

The row-level-security policies honour the platform scope only for members of the
`numbering_platform` group; the login role behind the `tenant` alias (DATABASE_TENANT_URL,
`numbering_tenant`) is not one. `tenant_role()` makes that connection this thread's
`default` for the duration of a unit of work, so every query, `transaction.atomic()`,
`rls_scope`, outbox/audit/idempotency write and `on_commit` hook on the way runs as the
tenant role without any code below knowing: an SQL injection there that sets
`app.scope = 'platform'` still sees only the tenant's rows.

Entered where the tenant is established, before any transaction:
- REST: `TenantRoleMiddleware`, for every request under the tenant portal `/api/tenant/`;
- gRPC: `grpc_server.servicer`, for mutations of a CN that acts for a tenant.

Django keeps connections per thread (ConnectionHandler is thread-critical), so the swap is
visible to this thread only and is undone when the unit of work ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse

ALIAS = "tenant"
TENANT_API_PREFIX = "/api/tenant/"


def enabled() -> bool:
    return bool(settings.TENANT_REQUESTS_ON_TENANT_ROLE) and ALIAS in settings.DATABASES


@contextmanager
def tenant_role() -> Iterator[bool]:
    """Run the block on the tenant role's connection (yields False when switched off)."""
    if not enabled():
        yield False
        return
    previous = connections["default"]
    if previous.in_atomic_block:
        # The block's queries would otherwise be split across two connections.
        raise RuntimeError("tenant_role() must be entered outside any transaction")
    _close_if_open(previous)  # one connection per thread (ADR 1503)
    connections["default"] = connections[ALIAS]
    try:
        yield True
    finally:
        connections["default"] = previous


def platform_role() -> None:
    """This thread's next unit of work runs on the app role: close its tenant-role connection
    if one is open, so that a thread holds one connection, never one of each (ADR 1503). A
    thread that keeps serving one kind of work keeps its connection. Inside tenant_role() it
    does nothing (the unit of work runs as the tenant)."""
    if ALIAS in settings.DATABASES and connections["default"] is not connections[ALIAS]:  # not inside tenant_role()
        _close_if_open(connections[ALIAS])


def _close_if_open(connection: Any) -> None:
    if connection.connection is not None and not connection.in_atomic_block:
        connection.close()


class TenantRoleMiddleware:
    """Every tenant-portal request runs as the tenant role, whoever it turns out to be
    (only tenant principals pass the role matrix there)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(TENANT_API_PREFIX):
            with tenant_role():
                return self.get_response(request)
        platform_role()
        return self.get_response(request)
