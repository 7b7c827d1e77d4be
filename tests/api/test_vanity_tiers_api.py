"""Vanity tier prices over REST (ADR 1650): list, propose, approve by a second user,
reject; the tenant search shows each vanity code's price in force."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from pools.models import InventoryPool, TenantPool
from tests.api.conftest import Api, make_token
from tests.factories import InventoryPoolFactory, NumberFactory, ShortCodeFactory
from tests.numbering.test_vanity_tiers import ensure_tier

pytestmark = pytest.mark.django_db

A = "/api/admin/v1"
T = "/api/tenant/v1"


@pytest.fixture
def olga() -> str:
    return make_token("commerce.ops", sub="ops.olga")


@pytest.fixture
def omar() -> str:
    return make_token("commerce.ops", sub="ops.omar")


def test_tiers_list_with_price_in_force(api: Api, olga: str) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    tiers = {t["code"]: t for t in api.get(f"{A}/vanity-tiers/", olga).json}
    assert tiers["GOLD"]["price"] == {
        "tier": "GOLD",
        "monthly_price": "12000.00",
        "setup_fee": "25000.00",
        "currency": "AFN",
    }
    assert tiers["GOLD"]["pending_change"] is None and tiers["GOLD"]["currency"] == "AFN"
    assert api.get(f"{A}/vanity-tiers/GOLD/", olga).json["name"] == "Gold"
    assert api.get(f"{A}/vanity-tiers/NOPE/", olga).status == 404


def test_propose_then_the_proposer_is_refused_and_a_second_user_approves(api: Api, olga: str, omar: str) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    body = {"tier": "GOLD", "monthly_price": "15000.00", "setup_fee": "20000", "reason": "2027 list"}
    proposed = api.post(f"{A}/tier-price-changes/", olga, body, headers={"Idempotency-Key": "p-1"})
    assert proposed.status == 201, proposed.json
    change = proposed.json
    assert (change["status"], change["monthly_price"], change["proposed_by"]) == (
        "PENDING",
        "15000.00",
        "user:ops.olga",
    )
    replay = api.post(f"{A}/tier-price-changes/", olga, body, headers={"Idempotency-Key": "p-1"})
    assert replay.status == 201 and replay.json["id"] == change["id"]
    assert api.get(f"{A}/vanity-tiers/GOLD/", olga).json["pending_change"]["id"] == change["id"]

    own = api.post(f"{A}/tier-price-changes/{change['id']}/approve/", olga, {})
    assert own.status == 400 and own.json["field"] == "decided_by"
    approved = api.post(f"{A}/tier-price-changes/{change['id']}/approve/", omar, {"note": "finance ok"})
    assert approved.status == 200 and approved.json["status"] == "APPROVED"
    assert approved.json["decided_by"] == "user:ops.omar"
    again = api.post(f"{A}/tier-price-changes/{change['id']}/reject/", omar, {})
    assert again.status in (409, 422) and again.json["code"] == "INVALID_TRANSITION"
    assert api.get(f"{A}/vanity-tiers/GOLD/", olga).json["price"]["monthly_price"] == "15000.00"
    assert list(AuditEvent.objects.filter(object_id="tier:GOLD").order_by("id").values_list("action", flat=True)) == [
        "tier_price.propose",
        "tier_price.approve",
    ]
    listed = api.get(f"{A}/tier-price-changes/", olga, {"tier": "GOLD", "status": "approved"}).json["results"]
    assert change["id"] in [c["id"] for c in listed]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tier": "GOLD", "monthly_price": "-1", "setup_fee": "0"}, "monthly_price"),
        ({"tier": "GOLD", "monthly_price": "1.234", "setup_fee": "0"}, "monthly_price"),
        ({"tier": "GOLD", "monthly_price": "1"}, "setup_fee"),
        ({"tier": "NOPE", "monthly_price": "1", "setup_fee": "0"}, "tier"),
        (
            {"tier": "GOLD", "monthly_price": "1", "setup_fee": "0", "effective_from": "2001-01-01T00:00:00Z"},
            "effective_from",
        ),
    ],
)
def test_bad_proposals_name_the_field(api: Api, olga: str, body: dict[str, Any], field: str) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    reply = api.post(f"{A}/tier-price-changes/", olga, body)
    assert reply.status in (400, 404), reply.json
    assert field in str(reply.json)


def test_tenant_search_shows_tier_and_price_and_filters_by_tier(api: Api, alice: Any, general_pool: Any) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    ensure_tier("SILVER", "6000.00", "10000.00")
    vanity_pool = InventoryPoolFactory(code="VANITY_SHORT_CODES", kind=InventoryPool.Kind.SHORT_CODE, vanity=True)
    TenantPool.objects.get(tenant=alice).inventory_pools.add(vanity_pool)
    ShortCodeFactory(number="7777", vanity=True, vanity_tier="GOLD", pool=vanity_pool)
    ShortCodeFactory(number="6666", vanity=True, vanity_tier="SILVER", pool=vanity_pool)
    NumberFactory(pool=general_pool)
    token = make_token("tenant.viewer", alice)
    rows = {r["number"]: r for r in api.get(f"{T}/numbers/available/", token).json["results"]}
    assert rows["7777"]["vanity_tier"] == "GOLD"
    assert rows["7777"]["price"] == {
        "tier": "GOLD",
        "monthly_price": "12000.00",
        "setup_fee": "25000.00",
        "currency": "AFN",
    }
    assert rows["6666"]["price"]["monthly_price"] == "6000.00"
    assert [r["price"] for r in rows.values() if not r["vanity"]] == [None]
    gold_only = api.get(f"{T}/numbers/available/", token, {"vanity_tier": "GOLD"}).json["results"]
    assert [r["number"] for r in gold_only] == ["7777"]


def test_tenant_reserves_and_assigns_a_vanity_code_and_sees_the_recorded_price(
    api: Api, alice: Any, general_pool: Any
) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    vanity_pool = InventoryPoolFactory(code="VANITY_SHORT_CODES", kind=InventoryPool.Kind.SHORT_CODE, vanity=True)
    TenantPool.objects.filter(tenant=alice).update(quota_short_code=5)
    TenantPool.objects.get(tenant=alice).inventory_pools.add(vanity_pool)
    ShortCodeFactory(number="7777", vanity=True, vanity_tier="GOLD", pool=vanity_pool)
    token = make_token("tenant.admin", alice)
    gold = {"tier": "GOLD", "monthly_price": "12000.00", "setup_fee": "25000.00", "currency": "AFN"}
    reserved = api.post(f"{T}/reservations/", token, {"number": "7777"}, headers={"Idempotency-Key": "r-7777"})
    assert reserved.status in (200, 201), reserved.json
    assert [r["price"] for r in api.get(f"{T}/reservations/", token).json["results"]] == [gold]
    assert api.post(f"{T}/numbers/7777/assign/", token, {}, headers={"Idempotency-Key": "a-7777"}).status == 200
    assert [lease["price"] for lease in api.get(f"{T}/leases/", token).json["results"]] == [gold]
