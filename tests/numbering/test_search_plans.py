"""EXPLAIN pins for tenant search and reserve-by-criteria (issue 11 item 5, ADR 1120).

30,000 numbers go in through one INSERT … SELECT (the bulk path of bench/search_1m/seed.py)
and numbering_analyze_numbers() refreshes the statistics (autovacuum may be off). Each test
builds the exact query the API or the reserve service runs (NumberSearchFilter over
number_available_for_tenant, ordered and limited as the cursor paginator does; the locking
candidate query of number_reserve_matching), sets the tenant's RLS scope as a request does,
on the restricted tenant role where it exists, and reads `EXPLAIN (FORMAT JSON)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.db.models import QuerySet
from django.http import QueryDict

from core.rls import rls_scope
from numbering import selectors
from numbering.filters import NumberSearchFilter
from numbering.models import Number
from tests.conftest import _tenant, committed_tables
from tests.factories import InventoryPoolFactory, IssuerFactory

ROWS = 30_000
PAGE = 51  # the cursor paginator fetches page_size + 1


@pytest.fixture(scope="module")
def inventory(django_db_blocker: Any, django_db_setup: Any) -> Iterator[Any]:
    """Committed once for the module (every test here only plans and reads; loading and
    analyzing 30,000 rows per test cost CI a minute)."""
    with committed_tables(django_db_blocker):
        yield _load_inventory()


def _load_inventory() -> Any:
    general_pool = InventoryPoolFactory()
    alice = _tenant("alice", general_pool)
    issuer: Any = IssuerFactory(code="ROSHAN")
    with transaction.atomic(), rls_scope(platform=True), connection.cursor() as cur:
        # 70 % AVAILABLE, the rest retired; every 50th a GOLD vanity number; a few short codes.
        cur.execute(
            "INSERT INTO numbering_number (number, kind, vanity, vanity_tier, is_test, state, version,"
            " state_changed_at, created_at, issuer_id, pool_id)"
            " SELECT '+9379' || lpad(g::text, 7, '0'), 'MSISDN', g %% 50 = 0,"
            " CASE WHEN g %% 50 = 0 THEN 'GOLD' ELSE '' END, false,"
            " CASE WHEN g %% 10 < 7 THEN 'AVAILABLE' ELSE 'RETIRED' END, 1, now(), now(), %s, %s"
            " FROM generate_series(1, %s) g",
            [issuer.id, general_pool.id, ROWS],
        )
        cur.execute(
            "INSERT INTO numbering_number (number, kind, vanity, vanity_tier, is_test, state, version,"
            " state_changed_at, created_at, issuer_id, pool_id)"
            " SELECT g::text, 'SHORT_CODE', false, '', false, 'AVAILABLE', 1, now(), now(), %s, %s"
            " FROM generate_series(1000, 1199) g",
            [issuer.id, general_pool.id],
        )
    with connection.cursor() as cur:
        cur.execute("SELECT numbering_analyze_numbers()")
    return alice


def tenant_alias() -> str:
    return "tenant" if "tenant" in connections else "default"


def explain(build: Callable[[], QuerySet[Any]], tenant_id: Any) -> dict[str, Any]:
    """EXPLAIN what `build()` returns, built and planned inside the tenant's RLS scope (the
    entitled pools are read while building, as in a request)."""
    alias = tenant_alias()
    with ExitStack() as stack:
        for name in {"default", alias}:
            stack.enter_context(transaction.atomic(using=name))
            stack.enter_context(rls_scope(tenant_id=tenant_id, using=name))
        qs = build()
        sql, params = qs.query.get_compiler(using=alias).as_sql()
        with connections[alias].cursor() as cur:
            cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            return cur.fetchone()[0][0]["Plan"]  # type: ignore[no-any-return]


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def number_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in nodes(plan) if n.get("Relation Name") == "numbering_number"]


def search(tenant: Any, **params: str) -> QuerySet[Number]:
    data = QueryDict(mutable=True)
    data.update(params)
    qs = selectors.number_available_for_tenant(tenant_id=tenant.id)
    size = int(data.pop("page_size", [PAGE])[0])
    return NumberSearchFilter(data, queryset=qs).qs.order_by("number")[:size]


def assert_indexed(plan: dict[str, Any]) -> list[dict[str, Any]]:
    scans = number_scans(plan)
    assert scans, plan
    assert all(s["Node Type"] != "Seq Scan" for s in scans), [s["Node Type"] for s in scans]
    return scans


def test_the_inventory_is_analyzed(inventory: Any) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples FROM pg_class WHERE relname = 'numbering_number'")
        assert cur.fetchone()[0] >= ROWS


@pytest.mark.parametrize(
    "params",
    [
        {"prefix": "+937900012"},
        {"prefix": "0790001"},
        {"prefix": "790001"},
        {"prefix": "+93"},
        {"kind": "SHORT_CODE"},
        {"kind": "MSISDN"},
        {"vanity_tier": "GOLD"},
        {},
        {"kind": "MSISDN", "prefix": "+9379002", "vanity_tier": "GOLD"},
    ],
)
def test_search_never_scans_the_number_table(inventory: Any, params: dict[str, str]) -> None:
    assert_indexed(explain(lambda: search(inventory, **params), inventory.id))


def test_a_prefix_is_an_index_range_under_rls(inventory: Any) -> None:
    """LIKE is not leakproof, so under RLS it could only filter; the range can bound."""
    scans = assert_indexed(explain(lambda: search(inventory, prefix="+937900012"), inventory.id))
    conds = " ".join(s.get("Index Cond", "") for s in scans)
    assert ">=" in conds and "<" in conds, scans


def test_a_pattern_with_leading_digits_is_bounded_by_an_index_range(inventory: Any) -> None:
    plan = explain(lambda: search(inventory, pattern="9379001*7"), inventory.id)
    assert_indexed(plan)
    conds = " ".join(n.get("Index Cond", "") for n in nodes(plan))
    assert "'+9379001'" in conds and "'+9379002'" in conds, conds


def test_a_pattern_starting_with_a_wildcard_walks_available_rows_in_order(inventory: Any) -> None:
    plan = explain(lambda: search(inventory, pattern="*777*"), inventory.id)
    scans = assert_indexed(plan)
    # An ordered index walk under the LIMIT: it stops when the page is full (no sort of the pool).
    assert plan["Node Type"] == "Limit"
    assert not any(n["Node Type"] == "Sort" for n in nodes(plan)), plan
    assert any(s.get("Index Name", "").startswith("number_available") for s in scans), scans


@pytest.mark.parametrize(
    "criteria",
    [
        {"prefix": "+9379001"},
        {"kind": "MSISDN"},
        {"vanity_tier": "GOLD"},
        {"pattern": "93790012*"},
        {"kind": "MSISDN", "prefix": "0790002", "vanity_tier": "GOLD"},
    ],
)
def test_reserve_by_criteria_locks_candidates_through_an_index(inventory: Any, criteria: dict[str, Any]) -> None:
    def build() -> QuerySet[Number]:
        q = selectors.number_criteria_q(**criteria)
        return selectors.available_candidates_queryset(tenant_id=inventory.id, criteria=q)[:10]

    assert_indexed(explain(build, inventory.id))


def test_prefix_search_finds_exactly_the_prefix(inventory: Any) -> None:
    """The range equals LIKE 'prefix%' on the C-collated column."""
    with transaction.atomic(), rls_scope(tenant_id=inventory.id):
        found = {n.number for n in search(inventory, prefix="+937900012", page_size="100")}
        like = set(
            Number.objects.filter(number__startswith="+937900012", state="AVAILABLE").values_list("number", flat=True)
        )
    assert found == like and len(like) == 70


@pytest.mark.parametrize("prefix", ["+937900012", "0790001", "00937900", "790001"])
def test_every_prefix_form_is_an_index_condition(inventory: Any, prefix: str) -> None:
    plan = explain(lambda: search(inventory, prefix=prefix), inventory.id)
    assert_indexed(plan)
    conds = " ".join(n.get("Index Cond", "") for n in nodes(plan))
    assert ">=" in conds and "<" in conds, (prefix, conds)


def test_a_vanity_tier_is_an_index_condition(inventory: Any) -> None:
    plan = explain(lambda: search(inventory, vanity_tier="GOLD"), inventory.id)
    assert_indexed(plan)
    assert any("vanity_tier" in n.get("Index Cond", "") for n in nodes(plan)), plan
