"""Vanity tiers with prices (issue 16 part 6, ADR 1650): four-eyes price changes, the price
in force recorded on reservations and leases, and carried by the lease events billing reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from core import errors
from core.actors import Actor
from core.clock import FakeClock
from core.models import OutboxEvent
from numbering import selectors, services
from numbering.models import Lease, Reservation, TierPriceChange, VanityTier
from pools.models import InventoryPool
from tests.factories import InventoryPoolFactory, NumberFactory, ShortCodeFactory, TenantFactory, TenantPoolFactory
from tests.numbering.helpers import OPS

pytestmark = pytest.mark.django_db

OPS_2 = Actor.user("ops.omar", roles=frozenset({"commerce.ops"}))
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock_at_start(fake_clock: FakeClock) -> FakeClock:
    fake_clock.set(START)
    return fake_clock


def ensure_tier(code: str, monthly: str, setup: str) -> VanityTier:
    """The tier with one approved price in force since 2020 (as migration 0009 seeds it;
    transactional tests flush the seed)."""
    tier, _ = VanityTier.objects.get_or_create(code=code, defaults={"name": code.title()})
    TierPriceChange.objects.filter(tier=tier).delete()
    since = datetime(2020, 1, 1, tzinfo=UTC)
    TierPriceChange.objects.create(
        tier=tier,
        monthly_price=Decimal(monthly),
        setup_fee=Decimal(setup),
        status="APPROVED",
        effective_from=since,
        proposed_by="system:test",
        proposed_at=since,
        decided_by="system:test",
        decided_at=since,
    )
    return tier


@pytest.fixture
def gold() -> VanityTier:
    return ensure_tier("GOLD", "12000.00", "25000.00")


@pytest.fixture
def vanity_setup() -> tuple[Any, Any, Any]:
    vanity_pool = InventoryPoolFactory(code="VANITY_SHORT_CODES", kind=InventoryPool.Kind.SHORT_CODE, vanity=True)
    general = InventoryPoolFactory()
    tenant = TenantFactory()
    TenantPoolFactory(tenant=tenant, inventory_pools=[general, vanity_pool], quota_short_code=5)
    return tenant, vanity_pool, general


def data_of(number: str, event_type: str) -> dict[str, Any]:
    return OutboxEvent.objects.filter(aggregate_id=number, event_type=event_type).latest("id").envelope["data"]


GOLD_PRICE = {"tier": "GOLD", "monthly_price": "12000.00", "setup_fee": "25000.00", "currency": "AFN"}


# --- four eyes ------------------------------------------------------------------------------


def test_migration_seeds_the_tiers_that_were_hard_coded_with_prices() -> None:
    prices = selectors.tier_prices_in_force(datetime.now(UTC))
    assert set(prices) >= {"PLATINUM", "GOLD", "SILVER", "BRONZE"}
    assert all(p.currency == "AFN" and p.monthly_price > 0 for p in prices.values())
    assert prices["PLATINUM"].monthly_price > prices["GOLD"].monthly_price > prices["SILVER"].monthly_price


def test_the_proposer_cannot_approve_their_own_price(gold: VanityTier, clock_at_start: FakeClock) -> None:
    change = services.tier_price_propose(tier_code="GOLD", monthly_price="15000", setup_fee="25000", actor=OPS)
    with pytest.raises(errors.ValidationError) as exc:
        services.tier_price_approve(change_id=change.id, actor=OPS)
    assert exc.value.field == "decided_by" and "second, different user" in exc.value.message
    change.refresh_from_db()
    assert change.status == "PENDING"
    assert selectors.tier_price_in_force("GOLD", START).monthly_price == Decimal("12000.00")


def test_an_approved_price_takes_effect_from_effective_from(gold: VanityTier, clock_at_start: FakeClock) -> None:
    effective = START + timedelta(days=7)
    change = services.tier_price_propose(
        tier_code="GOLD", monthly_price="15000.50", setup_fee="20000", effective_from=effective, actor=OPS
    )
    assert selectors.tier_price_in_force("GOLD", effective).monthly_price == Decimal("12000.00")  # pending
    services.tier_price_approve(change_id=change.id, actor=OPS_2, note="ok by finance")
    assert selectors.tier_price_in_force("GOLD", effective - timedelta(seconds=1)).monthly_price == Decimal("12000.00")
    now_in_force = selectors.tier_price_in_force("GOLD", effective)
    assert (now_in_force.monthly_price, now_in_force.setup_fee) == (Decimal("15000.50"), Decimal("20000.00"))


def test_an_approval_without_effective_from_is_in_force_from_the_approval(
    gold: VanityTier, clock_at_start: FakeClock
) -> None:
    change = services.tier_price_propose(tier_code="GOLD", monthly_price="13000", setup_fee="1", actor=OPS)
    clock_at_start.advance(timedelta(hours=2))
    approved = services.tier_price_approve(change_id=change.id, actor=OPS_2)
    assert approved.effective_from == START + timedelta(hours=2)
    assert selectors.tier_price_in_force("GOLD", START + timedelta(hours=1)).monthly_price == Decimal("12000.00")
    assert selectors.tier_price_in_force("GOLD", START + timedelta(hours=2)).monthly_price == Decimal("13000.00")


def test_an_approval_after_effective_from_has_passed_is_refused(gold: VanityTier, clock_at_start: FakeClock) -> None:
    change = services.tier_price_propose(
        tier_code="GOLD", monthly_price="13000", setup_fee="1", effective_from=START + timedelta(hours=1), actor=OPS
    )
    clock_at_start.advance(timedelta(hours=2))
    with pytest.raises(errors.ValidationError) as exc:
        services.tier_price_approve(change_id=change.id, actor=OPS_2)
    assert exc.value.field == "effective_from"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"monthly_price": "-1"}, "monthly_price"),
        ({"monthly_price": "12.345"}, "monthly_price"),
        ({"monthly_price": 12.5}, "monthly_price"),
        ({"monthly_price": "abc"}, "monthly_price"),
        ({"setup_fee": "99999999"}, "setup_fee"),
        ({"effective_from": START - timedelta(days=1)}, "effective_from"),
        ({"tier_code": "NOPE"}, "tier"),
    ],
)
def test_bad_proposals_are_refused_naming_the_field(
    gold: VanityTier, clock_at_start: FakeClock, kwargs: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {"tier_code": "GOLD", "monthly_price": "1", "setup_fee": "1", **kwargs}
    with pytest.raises(errors.DomainError) as exc:
        services.tier_price_propose(actor=OPS, **args)
    assert exc.value.field == field
    assert not TierPriceChange.objects.filter(status="PENDING").exists()


def test_one_pending_change_per_tier_and_a_tenant_may_not_propose(gold: VanityTier, clock_at_start: FakeClock) -> None:
    services.tier_price_propose(tier_code="GOLD", monthly_price="1", setup_fee="1", actor=OPS)
    with pytest.raises(errors.InvalidTransition):
        services.tier_price_propose(tier_code="GOLD", monthly_price="2", setup_fee="1", actor=OPS_2)
    tenant_actor = Actor.tenant("user-of-x", TenantFactory().id, roles=frozenset({"tenant.admin"}))
    with pytest.raises(errors.ValidationError):
        services.tier_price_propose(tier_code="GOLD", monthly_price="2", setup_fee="1", actor=tenant_actor)


def test_propose_approve_and_reject_are_audited_and_published(gold: VanityTier, clock_at_start: FakeClock) -> None:
    first = services.tier_price_propose(tier_code="GOLD", monthly_price="14000", setup_fee="1", actor=OPS)
    services.tier_price_approve(change_id=first.id, actor=OPS_2)
    second = services.tier_price_propose(tier_code="GOLD", monthly_price="99", setup_fee="1", actor=OPS_2)
    services.tier_price_reject(change_id=second.id, actor=OPS, note="too cheap")
    events = list(AuditEvent.objects.filter(object_type="vanity_tier", object_id="tier:GOLD").order_by("id"))
    assert [(e.action, e.actor) for e in events] == [
        ("tier_price.propose", "user:ops.olga"),
        ("tier_price.approve", "user:ops.omar"),
        ("tier_price.propose", "user:ops.omar"),
        ("tier_price.reject", "user:ops.olga"),
    ]
    assert events[1].after["status"] == "APPROVED" and events[1].before["status"] == "PENDING"
    published = list(OutboxEvent.objects.filter(aggregate_id="tier:GOLD").order_by("id"))
    assert [e.event_type for e in published] == [
        "numbering.tier.price_proposed.v1",
        "numbering.tier.price_approved.v1",
        "numbering.tier.price_proposed.v1",
        "numbering.tier.price_rejected.v1",
    ]
    assert published[1].envelope["data"]["monthly_price"] == "14000.00"
    with pytest.raises(errors.InvalidTransition):
        services.tier_price_approve(change_id=second.id, actor=OPS_2)


# --- the price in force on reservations, leases and events ------------------------------------


def test_reserve_then_assign_records_the_quoted_price_and_events_carry_it(
    gold: VanityTier, vanity_setup: tuple[Any, Any, Any], clock_at_start: FakeClock
) -> None:
    tenant, vanity_pool, _ = vanity_setup
    code = ShortCodeFactory(vanity=True, vanity_tier="GOLD", pool=vanity_pool)
    services.number_reserve(number=code.number, tenant_id=tenant.id, actor=OPS)
    reservation = Reservation.objects.get(number=code)
    assert (reservation.tier_code, reservation.monthly_price, reservation.setup_fee, reservation.currency) == (
        "GOLD",
        Decimal("12000.00"),
        Decimal("25000.00"),
        "AFN",
    )
    assert data_of(code.number, "numbering.number.reserved.v1")["price"] == GOLD_PRICE

    # A new price comes into force while the number is reserved: the quote holds.
    change = services.tier_price_propose(tier_code="GOLD", monthly_price="20000", setup_fee="30000", actor=OPS)
    services.tier_price_approve(change_id=change.id, actor=OPS_2)
    services.number_assign(number=code.number, tenant_id=tenant.id, actor=OPS)
    lease = Lease.objects.get(number=code)
    assert (lease.tier_code, lease.monthly_price, lease.setup_fee) == ("GOLD", Decimal("12000.00"), Decimal("25000.00"))
    assigned = data_of(code.number, "numbering.number.assigned.v1")
    assert assigned["price"] == GOLD_PRICE and assigned["vanity_tier"] == "GOLD"
    services.number_renew(number=code.number, actor=OPS)
    assert data_of(code.number, "numbering.lease.renewed.v1")["price"] == GOLD_PRICE


def test_direct_assign_records_the_price_in_force_at_that_moment(
    gold: VanityTier, vanity_setup: tuple[Any, Any, Any], clock_at_start: FakeClock
) -> None:
    tenant, vanity_pool, _ = vanity_setup
    code = ShortCodeFactory(vanity=True, vanity_tier="GOLD", pool=vanity_pool)
    change = services.tier_price_propose(
        tier_code="GOLD", monthly_price="16000", setup_fee="0", effective_from=START + timedelta(days=1), actor=OPS
    )
    services.tier_price_approve(change_id=change.id, actor=OPS_2)
    clock_at_start.advance(timedelta(days=1))
    services.number_assign(number=code.number, tenant_id=tenant.id, actor=OPS)
    lease = Lease.objects.get(number=code)
    assert (lease.monthly_price, lease.setup_fee, lease.currency) == (Decimal("16000.00"), Decimal("0.00"), "AFN")
    assert data_of(code.number, "numbering.number.assigned.v1")["price"] == {
        "tier": "GOLD",
        "monthly_price": "16000.00",
        "setup_fee": "0.00",
        "currency": "AFN",
    }


def test_standard_numbers_record_no_price_and_cost_no_extra_query(
    gold: VanityTier, vanity_setup: tuple[Any, Any, Any]
) -> None:
    tenant, _, general = vanity_setup
    plain = NumberFactory(pool=general)
    with CaptureQueriesContext(connection) as queries:
        services.number_assign(number=plain.number, tenant_id=tenant.id, actor=OPS)
    assert not [q for q in queries.captured_queries if "tierpricechange" in q["sql"]]
    lease = Lease.objects.get(number=plain)
    assert (lease.tier_code, lease.monthly_price, lease.setup_fee, lease.currency) == (None, None, None, None)
    assert "price" not in data_of(plain.number, "numbering.number.assigned.v1")


def test_a_vanity_number_costs_one_price_lookup(gold: VanityTier, vanity_setup: tuple[Any, Any, Any]) -> None:
    tenant, vanity_pool, _ = vanity_setup
    code = ShortCodeFactory(vanity=True, vanity_tier="GOLD", pool=vanity_pool)
    with CaptureQueriesContext(connection) as queries:
        services.number_assign(number=code.number, tenant_id=tenant.id, actor=OPS)
    assert len([q for q in queries.captured_queries if "numbering_tierpricechange" in q["sql"]]) == 1
