"""Search pages show tier prices from a cached approved schedule (selectors.tier_prices_shown,
ADR 1650 2026-12-03 amendment): the same answer as the database at any time the schedule
covers, a decision of this process at once, another process's within the setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings

from numbering import selectors, services
from numbering.models import TierPriceChange
from tests.numbering.helpers import OPS
from tests.numbering.test_vanity_tiers import OPS_2, ensure_tier

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_schedule() -> Any:
    selectors.forget_price_schedule()
    yield
    selectors.forget_price_schedule()


def _approved(tier: str, monthly: str, effective_from: datetime) -> TierPriceChange:
    return TierPriceChange.objects.create(
        tier_id=tier,
        monthly_price=Decimal(monthly),
        setup_fee=Decimal("0.00"),
        status="APPROVED",
        effective_from=effective_from,
        proposed_by="system:test",
        decided_by="system:test",
        decided_at=effective_from,
    )


def _monthly(prices: dict[str, TierPriceChange]) -> dict[str, str]:
    return {tier: f"{change.monthly_price:.2f}" for tier, change in prices.items()}


@override_settings(TIER_PRICE_CACHE_SECONDS=60)
def test_the_cached_schedule_answers_as_the_database_at_every_time() -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    ensure_tier("SILVER", "6000.00", "10000.00")
    now = datetime.now(UTC)
    _approved("GOLD", "13000.00", now + timedelta(hours=1))  # scheduled: in force in an hour
    _approved("SILVER", "7000.00", now - timedelta(hours=1))
    for at in (now - timedelta(days=3650), now, now + timedelta(hours=1), now + timedelta(days=1)):
        assert _monthly(selectors.tier_prices_shown(at)) == _monthly(selectors.tier_prices_in_force(at)), at
    # The scheduled change is shown from its effective_from on without reading again.
    assert _monthly(selectors.tier_prices_shown(now + timedelta(hours=1)))["GOLD"] == "13000.00"


@override_settings(TIER_PRICE_CACHE_SECONDS=60)
def test_another_processs_decision_shows_within_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    clock = [1000.0]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: clock[0])
    now = datetime.now(UTC)
    assert _monthly(selectors.tier_prices_shown(now))["GOLD"] == "12000.00"
    _approved("GOLD", "15000.00", now - timedelta(seconds=1))  # written behind this process's back
    clock[0] += 59
    assert _monthly(selectors.tier_prices_shown(now))["GOLD"] == "12000.00"  # still the copy
    clock[0] += 1
    assert _monthly(selectors.tier_prices_shown(now))["GOLD"] == "15000.00"  # read again at 60 s


@override_settings(TIER_PRICE_CACHE_SECONDS=60)
def test_a_decision_in_this_process_shows_at_once(django_capture_on_commit_callbacks: Any) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    assert _monthly(selectors.tier_prices_shown(datetime.now(UTC)))["GOLD"] == "12000.00"
    change = services.tier_price_propose(tier_code="GOLD", monthly_price="14000.00", setup_fee="0", actor=OPS)
    with django_capture_on_commit_callbacks(execute=True):
        services.tier_price_approve(change_id=change.id, actor=OPS_2)
    assert _monthly(selectors.tier_prices_shown(datetime.now(UTC)))["GOLD"] == "14000.00"


@override_settings(TIER_PRICE_CACHE_SECONDS=0)
def test_zero_reads_the_database_every_time() -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    now = datetime.now(UTC)
    assert _monthly(selectors.tier_prices_shown(now))["GOLD"] == "12000.00"
    _approved("GOLD", "15000.00", now - timedelta(seconds=1))
    assert _monthly(selectors.tier_prices_shown(now))["GOLD"] == "15000.00"
