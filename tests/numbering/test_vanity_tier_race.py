"""Two staff users approve the same tier price at once: exactly one approval lands (ADR 1650)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.db import connection

from audit.models import AuditEvent
from core import errors
from core.actors import Actor
from core.models import OutboxEvent
from numbering import services
from numbering.models import TierPriceChange, VanityTier

pytestmark = pytest.mark.usefixtures("committed")

OPS = Actor.user("ops.olga", roles=frozenset({"commerce.ops"}))


@pytest.fixture
def race_tier() -> Iterator[VanityTier]:
    """A tier of its own, removed afterwards: the seeded tiers outlive committed tests."""
    tier = VanityTier.objects.create(code="RACE", name="Race")
    yield tier
    TierPriceChange.objects.filter(tier=tier).delete()
    tier.delete()


def test_two_approvers_racing_one_wins(race_tier: VanityTier) -> None:
    change = services.tier_price_propose(tier_code="RACE", monthly_price="14000", setup_fee="1", actor=OPS)
    approvers = [Actor.user(f"lead.{i}", roles=frozenset({"commerce.ops"})) for i in range(4)]
    barrier = threading.Barrier(len(approvers))
    outcomes: list[str] = []

    def approve(actor: Actor) -> None:
        try:
            barrier.wait(timeout=60)
            services.tier_price_approve(change_id=change.id, actor=actor)
            outcomes.append("ok")
        except errors.InvalidTransition:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(a,)) for a in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]
    change.refresh_from_db()
    assert change.status == "APPROVED" and change.decided_by.startswith("user:lead.")
    assert change.effective_from is not None and change.effective_from <= datetime.now(UTC)
    assert AuditEvent.objects.filter(action="tier_price.approve", object_id="tier:RACE").count() == 1
    assert (
        OutboxEvent.objects.filter(event_type="numbering.tier.price_approved.v1", aggregate_id="tier:RACE").count() == 1
    )
