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
