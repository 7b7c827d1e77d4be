"""Tenant search pages are shaped from rows, not models (ADR 1120, 2026-12-03 amendment):
the rows must come out exactly as AvailableNumberSerializer makes them, field for field, for
every kind of number a page can hold, and the endpoint must answer with that shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db.models.signals import post_init

from core.rls import rls_scope
from numbering import selectors
from numbering.apis import serializers as s
from numbering.models import Number
from pools.models import InventoryPool, TenantPool
from tests.api.conftest import Api, make_token
from tests.factories import InventoryPoolFactory, NumberFactory, ShortCodeFactory, TenantFactory
from tests.numbering.test_vanity_tiers import ensure_tier

pytestmark = pytest.mark.django_db


def test_rows_come_out_as_the_serializer_makes_them(alice: Any, general_pool: Any) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    vanity_pool = InventoryPoolFactory(code="VANITY_SHORT_CODES", kind=InventoryPool.Kind.SHORT_CODE, vanity=True)
    at = datetime(2026, 12, 3, 7, 30, 15, 123456, tzinfo=UTC)
    made = [
        ShortCodeFactory(number="7777", vanity=True, vanity_tier="GOLD", pool=vanity_pool),  # a price in force
        ShortCodeFactory(number="6666", vanity=True, vanity_tier="BRONZE", pool=vanity_pool),  # a tier, no price
        ShortCodeFactory(number="5555", vanity=False, vanity_tier="GOLD", pool=vanity_pool),  # not vanity
        NumberFactory(pool=general_pool),
        NumberFactory(pool=None),  # outside any pool
        # Fields a search row never holds today (AVAILABLE: no tenant, no deadline) still format as DRF does.
        NumberFactory(state="RESERVED", tenant=TenantFactory(), reserved_until=at, quarantine_until=at, version=7),
    ]
    with rls_scope(platform=True):
        prices = selectors.tier_prices_in_force(datetime.now(UTC))
        ordered = Number.objects.filter(id__in=[n.id for n in made]).order_by("number")
        expected = s.AvailableNumberSerializer(
            list(ordered.select_related("issuer", "pool")), many=True, context={"prices": prices}
        ).data
        rows = s.available_rows(list(ordered.values(*s.AVAILABLE_COLUMNS)), prices)
    assert json.dumps(rows) == json.dumps(expected)  # same keys, same order, same values
    assert {r["number"]: r["price"] for r in rows}["7777"]["monthly_price"] == "12000.00"


def test_the_search_answers_in_the_serializer_shape_and_pages_by_cursor(
    api: Api, alice: Any, general_pool: Any
) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    vanity_pool = InventoryPoolFactory(code="VANITY_SHORT_CODES", kind=InventoryPool.Kind.SHORT_CODE, vanity=True)
    TenantPool.objects.get(tenant=alice).inventory_pools.add(vanity_pool)
    ShortCodeFactory(number="7777", vanity=True, vanity_tier="GOLD", pool=vanity_pool)
    for _ in range(4):
        NumberFactory(pool=general_pool)
    token = make_token("tenant.viewer", alice)
    built: list[Any] = []

    def count(**kwargs: Any) -> None:
        built.append(kwargs["instance"])

    post_init.connect(count, sender=Number, dispatch_uid="test_search_rows.count")
    try:
        first = api.get("/api/tenant/v1/numbers/available/", token, {"page_size": 3}).json
    finally:
        assert post_init.disconnect(sender=Number, dispatch_uid="test_search_rows.count")
    assert built == [], "the search page built Number models"
    assert [list(r) for r in first["results"]] == [[*s.AvailableNumberSerializer.Meta.fields]] * 3
    rest = api.get(first["next"].split("testserver")[1], token).json
    numbers = [r["number"] for r in first["results"] + rest["results"]]
    assert len(numbers) == 5 and numbers == sorted(numbers) and len(set(numbers)) == 5
    assert {r["number"]: r["price"] for r in first["results"] + rest["results"]}["7777"]["tier"] == "GOLD"


def test_pages_forward_and_back_as_the_cursor_promises(api: Api, alice: Any, general_pool: Any) -> None:
    """The compiled page (core/query_shapes.py, read through core.api.pagination.RowPages)
    pages like a queryset: forward to the end, then back, every page in number order."""
    made = sorted(NumberFactory(pool=general_pool).number for _ in range(8))
    token = make_token("tenant.viewer", alice)
    path = "/api/tenant/v1/numbers/available/"
    pages = [api.get(path, token, {"page_size": 3}).json]
    while pages[-1]["next"]:
        pages.append(api.get(pages[-1]["next"].split("testserver")[1], token).json)
    assert [[r["number"] for r in p["results"]] for p in pages] == [made[0:3], made[3:6], made[6:8]]
    assert pages[0]["previous"] is None
    back = api.get(pages[2]["previous"].split("testserver")[1], token).json
    assert [r["number"] for r in back["results"]] == made[3:6]
    first = api.get(back["previous"].split("testserver")[1], token).json
    assert [r["number"] for r in first["results"]] == made[0:3] and first["previous"] is None


def test_one_compiled_search_answers_each_tenant_with_its_own_pools(api: Api, alice: Any, general_pool: Any) -> None:
    """The tenant's id is a value of the compiled page, never part of its shape: the same
    search by two tenants entitled to different pools shows each only its own."""
    from numbering.apis.tenant import _AVAILABLE_PAGE

    other_pool = InventoryPoolFactory(code="OTHER_POOL")
    dora = TenantFactory(name="Dora")
    TenantPool.objects.create(tenant=dora).inventory_pools.add(other_pool)
    mine = {NumberFactory(pool=general_pool).number for _ in range(3)}
    theirs = {NumberFactory(pool=other_pool).number for _ in range(2)}
    path, query = "/api/tenant/v1/numbers/available/", {"prefix": "+9379", "page_size": 50}
    compiled = _AVAILABLE_PAGE.compiled_shapes()
    seen_by_alice = {r["number"] for r in api.get(path, make_token("tenant.viewer", alice), query).json["results"]}
    seen_by_dora = {r["number"] for r in api.get(path, make_token("tenant.viewer", dora), query).json["results"]}
    assert seen_by_alice == mine and seen_by_dora == theirs
    assert _AVAILABLE_PAGE.compiled_shapes() <= compiled + 1  # one shape (or none new: an earlier test made it)


def test_bad_criteria_are_refused_by_name(api: Api, alice: Any) -> None:
    token = make_token("tenant.viewer", alice)
    path = "/api/tenant/v1/numbers/available/"
    kind = api.get(path, token, {"kind": "LANDLINE"})
    assert kind.status == 400 and "kind" in kind.body.decode()
    prefix = api.get(path, token, {"prefix": "+93x"})
    assert prefix.status == 400 and "not a valid prefix" in prefix.body.decode()


def test_row_pages_refuse_what_the_cursor_algorithm_never_asks() -> None:
    from core.api.pagination import RowPages

    pages = RowPages(lambda **kwargs: [kwargs])
    with pytest.raises(ValueError, match="one unique column"):
        pages.order_by("number", "id")
    pages.order_by("-number")
    with pytest.raises(ValueError, match="cannot filter"):
        pages.filter(number__gt="+93")  # descending pages go below the position
    assert pages.filter(number__lt="+93")[0:4] == [{"descending": True, "after": "+93", "offset": 0, "limit": 4}]


def test_each_filterset_class_builds_its_form_class_once() -> None:
    """The cached form class is per FilterSet class, and each instance still validates its
    own data (numbering/filters.py, NumberSearchFilter.get_form_class)."""
    from django.http import QueryDict

    from numbering.filters import AdminNumberFilter, NumberSearchFilter, TenantNumberFilter

    good = NumberSearchFilter(QueryDict("kind=MSISDN"), queryset=Number.objects.none())
    bad = NumberSearchFilter(QueryDict("kind=LANDLINE"), queryset=Number.objects.none())
    assert type(good.form) is type(bad.form)
    assert good.is_valid() and not bad.is_valid() and list(bad.errors) == ["kind"]
    tenant = TenantNumberFilter(QueryDict("state=ASSIGNED"), queryset=Number.objects.none())
    admin = AdminNumberFilter(QueryDict("state=QUARANTINED"), queryset=Number.objects.none())
    assert tenant.is_valid() and admin.is_valid()
    assert len({type(good.form), type(tenant.form), type(admin.form)}) == 3
    assert "state" in tenant.form.fields and "pool" in admin.form.fields and "state" not in good.form.fields
