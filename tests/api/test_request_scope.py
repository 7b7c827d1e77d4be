"""A REST request's RLS scope (core.api.views, core.rls.scope_until_commit): when the
request's transaction is the outermost one, as in production, one set_config sets the scope
and nothing restores it (the commit ends it), and each caller still sees only its rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import Api, make_token
from tests.factories import InventoryPoolFactory, NumberFactory, TenantFactory, TenantPoolFactory


@contextmanager
def statements(aliases: tuple[str, ...] = ("default", "tenant")) -> Iterator[list[str]]:
    """The SQL the database aliases ran inside the block (the tenant portal may run on the tenant role)."""
    sql: list[str] = []
    with ExitStack() as stack:
        captures = [stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in aliases]
        yield sql
        stack.close()
        sql.extend(query["sql"] for capture in captures for query in capture.captured_queries)


def test_a_request_sets_its_scope_once_and_sees_only_its_rows(committed: None) -> None:
    mine, theirs = InventoryPoolFactory(code="ALICE_POOL"), InventoryPoolFactory(code="BOB_POOL")
    alice, bob = TenantFactory(name="Alice"), TenantFactory(name="Bob")
    TenantPoolFactory(tenant=alice, inventory_pools=[mine])
    TenantPoolFactory(tenant=bob, inventory_pools=[theirs])
    alices = {NumberFactory(pool=mine).number for _ in range(3)}
    bobs = {NumberFactory(pool=theirs).number for _ in range(2)}
    api = Api()
    seen: dict[str, Any] = {}
    for name, tenant in (("alice", alice), ("bob", bob)):
        token = make_token("tenant.viewer", tenant)
        api.get("/api/tenant/v1/pools/", token)  # warm: connections and the compiled page
        with statements() as sql:
            reply = api.get("/api/tenant/v1/numbers/available/", token, {"page_size": 50})
        assert reply.status == 200
        seen[name] = {r["number"] for r in reply.json["results"]}
        scopes = [s for s in sql if "set_config('app.scope'" in s]
        assert len(scopes) == 1, sql  # set once, never restored
    assert seen == {"alice": alices, "bob": bobs}


@pytest.mark.django_db
def test_inside_another_transaction_the_scope_is_restored(api: Api, alice: Any, general_pool: Any) -> None:
    """A test's transaction wraps the request's: the scope is saved and restored, so the
    statements after the request run under the test's own scope."""
    NumberFactory(pool=general_pool)
    with statements(("default",)) as sql:
        assert api.get("/api/tenant/v1/numbers/available/", make_token("tenant.viewer", alice)).status == 200
    assert len([s for s in sql if "set_config('app.scope'" in s]) == 2
