"""A queryset compiled once per shape and run again with other values (core/query_shapes.py,
ADR 1120 second 2026-12-03 amendment): the rows must be the ORM's for every criterion the
tenant search takes, a shape must compile once, a value must never be pasted into SQL, and a
lookup that rewrites its value must never be templated."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db.models import Q, QuerySet

from core.query_shapes import QueryShapes
from core.rls import rls_scope
from numbering import selectors
from numbering.models import Number
from tests.factories import InventoryPoolFactory, NumberFactory, ShortCodeFactory

pytestmark = pytest.mark.django_db

COLUMNS = ("number", "kind", "vanity", "vanity_tier", "issuer__code", "pool__code", "version", "state_changed_at")


class Counted:
    """A build function that counts how often it runs (a compile or an ORM fallback)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *, criteria: Q, after: str | None, limit: int, pool: str | None = None) -> QuerySet[Any]:
        self.calls += 1
        rows = Number.objects.filter(criteria).order_by("number")
        if pool is not None:
            rows = rows.filter(pool__code=pool)
        if after is not None:
            rows = rows.filter(number__gt=after)
        return rows.values(*COLUMNS)[:limit]


@pytest.fixture
def inventory(general_pool: Any) -> list[Number]:
    other = InventoryPoolFactory(code="OTHER_POOL")
    made = [NumberFactory(pool=general_pool) for _ in range(6)] + [NumberFactory(pool=other) for _ in range(3)]
    made += [
        ShortCodeFactory(number="7777", vanity=True, vanity_tier="GOLD"),
        ShortCodeFactory(number="4747", vanity=True, vanity_tier="SILVER"),
        ShortCodeFactory(number="123", vanity=False),
    ]
    return made


CRITERIA = [
    {"prefix": "+9379"},
    {"prefix": "079"},
    {"prefix": "77"},
    {"prefix": "4"},
    {"pattern": "*7*"},
    {"pattern": "4?4?"},
    {"kind": "SHORT_CODE", "vanity": True},
    {"kind": "SHORT_CODE", "vanity": False},
    {"vanity_tier": "GOLD"},
    {"issuer": "roshan"},
    {"number": "7777"},
    {"prefix": "+93", "pattern": "*1*", "kind": "MSISDN"},
]


def test_rows_are_the_orms_for_every_criterion_and_each_shape_compiles_once(inventory: list[Number]) -> None:
    build = Counted()
    shapes = QueryShapes(build)
    with rls_scope(platform=True):
        for criteria in CRITERIA:
            q = selectors.number_criteria_q(**criteria)
            for after in (None, "+93", "5"):
                expected = list(build(criteria=q, after=after, limit=50))
                assert shapes.rows(criteria=q, after=after, limit=50) == expected, (criteria, after)
        assert any(shapes.rows(criteria=selectors.number_criteria_q(**c), after=None, limit=50) for c in CRITERIA)
        compiled, calls = shapes.compiled_shapes(), build.calls
        # Other values of shapes already seen: no compile, no ORM.
        for prefix in ("+9370", "+93799", "0700"):
            shapes.rows(criteria=selectors.prefix_q(prefix), after="+9370", limit=50)
        shapes.rows(criteria=selectors.number_criteria_q(vanity_tier="SILVER"), after=None, limit=50)
    assert shapes.compiled_shapes() == compiled
    assert build.calls == calls


def test_a_value_is_a_parameter_never_sql(inventory: list[Number]) -> None:
    shapes = QueryShapes(Counted())
    hostile = "GOLD' OR '1'='1"
    with rls_scope(platform=True):
        assert shapes.rows(criteria=Q(vanity_tier="GOLD"), after=None, limit=50)  # the shape compiles
        assert shapes.rows(criteria=Q(vanity_tier=hostile), after=None, limit=50) == []
        assert [r["number"] for r in shapes.rows(criteria=Q(vanity_tier="GOLD"), after=None, limit=50)] == ["7777"]


def test_the_same_shape_runs_with_each_callers_values(inventory: list[Number], general_pool: Any) -> None:
    """What isolates tenants in the search (their id in the entitled-pools subquery) is a
    value: a shape compiled for one caller answers the next one with the next one's value."""
    shapes = QueryShapes(Counted())
    with rls_scope(platform=True):
        mine = shapes.rows(criteria=Q(), after=None, limit=50, pool=general_pool.code)
        theirs = shapes.rows(criteria=Q(), after=None, limit=50, pool="OTHER_POOL")
    assert {r["pool__code"] for r in mine} == {general_pool.code} and len(mine) == 6
    assert {r["pool__code"] for r in theirs} == {"OTHER_POOL"} and len(theirs) == 3
    assert shapes.compiled_shapes() == 1


def test_a_lookup_that_rewrites_its_value_is_never_templated(inventory: list[Number]) -> None:
    build = Counted()
    shapes = QueryShapes(build)
    with rls_scope(platform=True):
        # startswith sends 'value%' (escaped): the sentinel comes back rewritten, so the ORM runs every time.
        for prefix in ("+9379", "77", "4"):
            q = Q(number__startswith=prefix)
            assert shapes.rows(criteria=q, after=None, limit=50) == list(build(criteria=q, after=None, limit=50))
    assert shapes.compiled_shapes() == 0
    assert build.calls == 6 + 1  # three ORM answers and three comparisons, plus the one refused compile


def test_an_argument_it_cannot_take_apart_runs_through_the_orm(inventory: list[Number]) -> None:
    build = Counted()
    shapes = QueryShapes(build)
    with rls_scope(platform=True):
        numbers = [inventory[0].number, inventory[1].number]
        q = Q(number__in=numbers)  # a list: its length would be part of the SQL
        assert [r["number"] for r in shapes.rows(criteria=q, after=None, limit=50)] == sorted(numbers)
        q = Q(number__in=numbers[:1])
        assert [r["number"] for r in shapes.rows(criteria=q, after=None, limit=50)] == numbers[:1]
    assert shapes.compiled_shapes() == 0 and build.calls == 2


def test_the_cache_is_bounded(inventory: list[Number]) -> None:
    shapes = QueryShapes(Counted(), maxsize=2)
    with rls_scope(platform=True):
        for limit in (1, 2, 3, 4):  # a LIMIT is part of the SQL: four shapes
            assert len(shapes.rows(criteria=Q(), after=None, limit=limit)) == limit
    assert shapes.compiled_shapes() == 2


def test_build_must_return_values_rows(inventory: list[Number]) -> None:
    shapes = QueryShapes(lambda *, criteria: Number.objects.filter(criteria))
    with rls_scope(platform=True), pytest.raises(ValueError, match=r"\.values\(<fields>\) rows"):
        shapes.rows(criteria=Q(kind="MSISDN"))


def test_uuid_values_get_slots(inventory: list[Number]) -> None:
    shapes = QueryShapes(
        lambda *, tenant: Number.objects.filter(Q(tenant_id=tenant) | Q(tenant__isnull=True)).values("number")[:100]
    )
    with rls_scope(platform=True):
        first = shapes.rows(tenant=uuid.uuid4())
        second = shapes.rows(tenant=uuid.uuid4())
    assert len(first) == len(second) == len(inventory)
    assert shapes.compiled_shapes() == 1


def test_a_query_with_no_sql_is_answered_by_the_orm(inventory: list[Number]) -> None:
    shapes = QueryShapes(lambda *, tier: Number.objects.none().filter(vanity_tier=tier).values("number"))
    with rls_scope(platform=True):
        assert shapes.rows(tier="GOLD") == [] and shapes.rows(tier="SILVER") == []
    assert shapes.compiled_shapes() == 0


def test_a_shape_that_fails_to_compile_is_answered_by_the_orm_and_tried_again(inventory: list[Number]) -> None:
    calls: list[str] = []

    def build(*, tier: str) -> QuerySet[Any]:
        calls.append(tier)
        if "\ue000" in tier:  # only the sentinel trips it: a compile-time failure
            raise RuntimeError("cannot build with this value")
        return Number.objects.filter(vanity_tier=tier).values("number")

    shapes = QueryShapes(build)
    with rls_scope(platform=True):
        assert shapes.rows(tier="GOLD") == [{"number": "7777"}]
        assert shapes.rows(tier="SILVER") == [{"number": "4747"}]
    assert shapes.compiled_shapes() == 0
    assert [c for c in calls if "\ue000" in c] and len([c for c in calls if "\ue000" in c]) == 2  # tried twice
