"""seed_demo: populated through the real import path, every state shows, idempotent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from contracts.models import Contract, InventoryImport, Issuer, SigningKey
from core import clock
from numbering.models import Lease, Number, TierPriceChange
from numbering.selectors import tier_prices_in_force
from pools.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _dev_dir(settings, tmp_path):
    settings.DEV_DIR = tmp_path / "dev"


def test_seed_demo_populates_every_issuer_pool_tenant_and_state_and_is_idempotent(settings):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert set(Issuer.objects.values_list("code", flat=True)) == {
        "ROSHAN",
        "ETISALAT_AF",
        "MTN_AF",
        "AWCC",
        "SALAAM",
        "ATRA",
    }
    per_issuer = dict(Number.objects.filter(kind="MSISDN").values_list("issuer__code").annotate(n=Count("id")))
    assert all(per_issuer[code] >= 1000 for code in ("ROSHAN", "ETISALAT_AF", "MTN_AF", "AWCC", "SALAAM"))
    assert Number.objects.filter(kind="SHORT_CODE", vanity=False).count() == 50
    assert set(Number.objects.filter(vanity=True).values_list("vanity_tier", flat=True)) == {
        "PLATINUM",
        "GOLD",
        "SILVER",
        "BRONZE",
    }
    # Priced tiers (ADR 1650): a price in force for each, a scheduled rise, a change pending
    # a second pair of eyes; the demo's vanity lease records its tier's price.
    prices = tier_prices_in_force(clock.now())
    assert {c: str(prices[c].monthly_price) for c in ("PLATINUM", "GOLD", "SILVER", "BRONZE")} == {
        "PLATINUM": "25000.00",
        "GOLD": "12000.00",
        "SILVER": "6000.00",
        "BRONZE": "2500.00",
    }
    assert tier_prices_in_force(clock.now() + timedelta(days=31))["GOLD"].monthly_price == Decimal("13500.00")
    assert TierPriceChange.objects.get(status="PENDING").tier_id == "SILVER"
    vanity_lease = Lease.objects.get(number__vanity=True)
    assert vanity_lease.currency == "AFN" and vanity_lease.monthly_price == prices[vanity_lease.tier_code].monthly_price
    assert set(Number.objects.values_list("state", flat=True)) == {
        "AVAILABLE",
        "RESERVED",
        "ASSIGNED",
        "QUARANTINED",
        "RETIRED",
    }
    assert set(Tenant.objects.values_list("segment", flat=True)) == {"ENTERPRISE", "SMB", "GOVERNMENT"}
    assert InventoryImport.objects.filter(status="COMMITTED").count() == 6
    assert (settings.DEV_DIR / "keys" / "roshan.key.pem").stat().st_mode & 0o777 == 0o600
    assert SigningKey.objects.count() == 6
    # Issue 16: one suspended contract, one terminating 20 days ahead with held numbers.
    assert Contract.objects.get(reference="MOU-SALAAM-2026").status == "SUSPENDED"
    legacy = Contract.objects.get(reference="MOU-ETISALAT_AF-2024")
    assert legacy.status == "TERMINATED" and legacy.ends_on == clock.today() + timedelta(days=20)
    legacy_states = dict(
        Number.objects.filter(block__contract=legacy).values_list("state").annotate(n=Count("id")).order_by()
    )
    assert legacy_states == {"ASSIGNED": 2, "RETIRED": 8}
    before = (Number.objects.count(), InventoryImport.objects.count(), SigningKey.objects.count())
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert (Number.objects.count(), InventoryImport.objects.count(), SigningKey.objects.count()) == before
    assert "already imported" in out.getvalue() and "already present" in out.getvalue()
    # Once the demo reservations have expired, a re-run reserves a few again.
    from core.actors import Actor
    from numbering import services

    for number in Number.objects.filter(state="RESERVED").values_list("number", flat=True):
        services.number_recall(number=number, actor=Actor.system("test"))
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "reservations topped up" in out.getvalue()
    assert Number.objects.filter(state="RESERVED").count() == 3


def test_seed_demo_refuses_production(settings):
    settings.NUMBERING_ENV = "production"
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo")
    assert not Issuer.objects.exists()
