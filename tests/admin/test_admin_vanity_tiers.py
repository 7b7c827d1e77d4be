"""Vanity tiers in the Django admin (ADR 1650): prices on the tier list, a proposal through
the add form, four eyes on the approve action, every step audited as the staff user."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from core import authz as roles
from numbering.models import TierPriceChange
from tests.admin.conftest import staff_user
from tests.numbering.test_vanity_tiers import ensure_tier

pytestmark = pytest.mark.django_db


def test_tier_list_shows_the_price_in_force(ops_client: Any) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    page = ops_client.get(reverse("admin:numbering_vanitytier_changelist")).content.decode()
    assert "GOLD" in page and "12,000.00" in page and "25,000.00" in page


def test_propose_in_the_admin_then_four_eyes_on_approve(client: Any, ops_client: Any) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    add = reverse("admin:numbering_tierpricechange_add")
    past = ops_client.post(
        add,
        {
            "tier": "GOLD",
            "monthly_price": "15000",
            "setup_fee": "0",
            "effective_from_0": "2001-01-01",
            "effective_from_1": "00:00:00",
        },
    )
    assert past.status_code == 200 and "may not lie in the past" in past.content.decode()
    assert ops_client.post(add, {"tier": "GOLD", "monthly_price": "15000", "setup_fee": "0"}).status_code == 302
    change = TierPriceChange.objects.get(tier_id="GOLD", status="PENDING")
    assert change.proposed_by == "user:olga"

    changelist = reverse("admin:numbering_tierpricechange_changelist")
    own = ops_client.post(changelist, {"action": "approve", "_selected_action": [change.pk]}, follow=True)
    assert "second, different user" in own.content.decode()
    change.refresh_from_db()
    assert change.status == "PENDING"

    client.force_login(staff_user("omar", roles.COMMERCE_OPS))
    client.post(changelist, {"action": "approve", "_selected_action": [change.pk]})
    change.refresh_from_db()
    assert (change.status, change.decided_by) == ("APPROVED", "user:omar")
    assert list(AuditEvent.objects.filter(object_id="tier:GOLD").order_by("id").values_list("action", "actor")) == [
        ("tier_price.propose", "user:olga"),
        ("tier_price.approve", "user:omar"),
    ]


def test_auditor_sees_tiers_but_cannot_propose_or_approve(client: Any) -> None:
    ensure_tier("GOLD", "12000.00", "25000.00")
    client.force_login(staff_user("aud", roles.AUDITOR))
    assert client.get(reverse("admin:numbering_vanitytier_changelist")).status_code == 200
    add = reverse("admin:numbering_tierpricechange_add")
    assert client.post(add, {"tier": "GOLD", "monthly_price": "1", "setup_fee": "0"}).status_code == 403
    assert not TierPriceChange.objects.filter(status="PENDING").exists()


def test_a_new_tier_is_added_in_the_admin_audited_and_a_bad_code_is_a_form_error(ops_client: Any) -> None:
    add = reverse("admin:numbering_vanitytier_add")
    bad = ops_client.post(add, {"code": "gold-2", "name": "Gold 2", "is_active": "on"})
    assert bad.status_code == 200 and "upper-case letter" in bad.content.decode()
    assert ops_client.post(add, {"code": "DIAMOND", "name": "Diamond", "is_active": "on"}).status_code == 302
    event = AuditEvent.objects.get(action="vanity_tier.create")
    assert (event.actor, event.object_id) == ("user:olga", "tier:DIAMOND")
