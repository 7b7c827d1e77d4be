"""Vanity tier prices (issue 16 part 6, ADR 1650): commerce proposes a monthly price and a
setup fee for a tier; a second, different staff user approves (or rejects) it; an approved
price is in force from its effective_from on. Every step is audited and published.

The price a reservation or lease records is read with `price_for_number`, once per
reserve/assign of a vanity number, inside the action's transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction

from audit.services import audit_append, audited_save
from core import authz, clock, errors
from core.actors import Actor
from core.outbox import outbox_enqueue
from numbering import selectors
from numbering.models import Number, TierPriceChange, VanityTier
from numbering.snapshots import iso

# A list price above this is a typo (a monthly price of a million AFN is not a vanity code).
MAX_PRICE = Decimal("1000000.00")
# An approval may not lie in the past: prices already charged must not change behind
# billing's back. The proposer may say "from the approval on" (effective_from empty).
EFFECTIVE_FROM_SKEW = timedelta(minutes=5)

EVENT_PROPOSED = "numbering.tier.price_proposed.v1"
EVENT_APPROVED = "numbering.tier.price_approved.v1"
EVENT_REJECTED = "numbering.tier.price_rejected.v1"


def change_snapshot(change: TierPriceChange) -> dict[str, Any]:
    return {
        "id": change.id,
        "tier": change.tier_id,
        "monthly_price": f"{change.monthly_price:.2f}",
        "setup_fee": f"{change.setup_fee:.2f}",
        "currency": change.currency,
        "status": change.status,
        "effective_from": iso(change.effective_from),
        "reason": change.reason,
        "proposed_by": change.proposed_by,
        "proposed_at": iso(change.proposed_at),
        "decided_by": change.decided_by or None,
        "decided_at": iso(change.decided_at),
        "decision_note": change.decision_note,
    }


def _amount(value: Any, field: str) -> Decimal:
    """Money is a Decimal with at most two places, 0 ≤ value ≤ MAX_PRICE; never a float."""
    if isinstance(value, float):
        raise errors.ValidationError(f'{field}: send a decimal string (e.g. "1500.00"), not a float', field=field)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise errors.ValidationError(
            f"{field}: {str(value)[:32]!r} is not a decimal amount in AFN", field=field
        ) from None
    if not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise errors.ValidationError(f"{field}: at most two decimal places (AFN)", field=field)
    if not Decimal(0) <= amount <= MAX_PRICE:
        raise errors.ValidationError(f"{field}: must be between 0 and {MAX_PRICE} AFN", field=field)
    return amount.quantize(Decimal("0.01"))


def vanity_tier_save(tier: VanityTier, *, actor: Actor, save: Any) -> None:
    """Create a tier, rename it or retire it (is_active); audited. Never its price."""
    authz.require_platform(actor, "vanity_tier_save")
    audited_save(tier, actor=actor.identity, object_type="vanity_tier", object_id=lambda t: f"tier:{t.code}", save=save)


def _record(change: TierPriceChange, *, action: str, event: str, actor: Actor, before: Any) -> None:
    after = change_snapshot(change)
    audit_append(
        actor=actor.identity,
        action=action,
        object_type="vanity_tier",
        object_id=f"tier:{change.tier_id}",
        before=before,
        after=after,
        occurred_at=clock.now(),
    )
    outbox_enqueue(event_type=event, aggregate_id=f"tier:{change.tier_id}", data=after)


def tier_price_check(
    *, monthly_price: Any, setup_fee: Any, effective_from: datetime | None, reason: str = ""
) -> tuple[Decimal, Decimal]:
    """The rules of a proposal's values (the service and the admin form both run them)."""
    monthly = _amount(monthly_price, "monthly_price")
    setup = _amount(setup_fee, "setup_fee")
    if effective_from is not None:
        if effective_from.tzinfo is None:
            raise errors.ValidationError(
                "effective_from: needs a time zone (ISO 8601 with offset, e.g. Z)", field="effective_from"
            )
        if effective_from < clock.now() - EFFECTIVE_FROM_SKEW:
            raise errors.ValidationError(
                "effective_from: may not lie in the past (leave it empty for 'from the approval on')",
                field="effective_from",
            )
    if len(reason) > 500:
        raise errors.ValidationError("reason: at most 500 characters", field="reason")
    return monthly, setup


def tier_price_propose(
    *,
    tier_code: str,
    monthly_price: Any,
    setup_fee: Any,
    actor: Actor,
    effective_from: datetime | None = None,
    reason: str = "",
) -> TierPriceChange:
    """Propose a new price for a tier. It is not in force until a second user approves it."""
    authz.require_platform(actor, "tier_price.propose")
    monthly, setup = tier_price_check(
        monthly_price=monthly_price, setup_fee=setup_fee, effective_from=effective_from, reason=reason
    )
    now = clock.now()
    with transaction.atomic():
        tier = VanityTier.objects.filter(code=tier_code).first()
        if tier is None:
            raise errors.NotFound(f"tier: no vanity tier {tier_code!r}", field="tier")
        if not tier.is_active:
            raise errors.InvalidTransition(f"tier: {tier_code} is retired; it takes no new prices", field="tier")
        try:
            with transaction.atomic():
                change = TierPriceChange.objects.create(
                    tier=tier,
                    monthly_price=monthly,
                    setup_fee=setup,
                    effective_from=effective_from,
                    reason=reason.strip(),
                    proposed_by=actor.identity,
                    proposed_at=now,
                )
        except IntegrityError:
            raise errors.InvalidTransition(
                f"tier: {tier_code} already has a pending price change; approve or reject it first", field="tier"
            ) from None
        _record(change, action="tier_price.propose", event=EVENT_PROPOSED, actor=actor, before=None)
    return change


def _decide(*, change_id: int, actor: Actor, approve: bool, note: str) -> TierPriceChange:
    verb = "approve" if approve else "reject"
    authz.require_platform(actor, f"tier_price.{verb}")
    if len(note) > 500:
        raise errors.ValidationError("note: at most 500 characters", field="note")
    with transaction.atomic():
        # The row lock serialises two approvers racing: the second sees the decision.
        change = TierPriceChange.objects.select_for_update().filter(id=change_id).first()
        if change is None:
            raise errors.NotFound(f"id: no tier price change {change_id}", field="id")
        if change.status != TierPriceChange.Status.PENDING:
            raise errors.InvalidTransition(
                f"price change {change_id} is already {change.status.lower()} by {change.decided_by}; "
                "it cannot be decided again"
            )
        # A proposer may withdraw (reject) their own proposal; approving it needs four eyes.
        if approve:
            authz.require_second_pair_of_eyes(
                author=change.proposed_by, approver=actor, what="proposed this price", field="decided_by"
            )
        now = clock.now()
        before = change_snapshot(change)
        if approve:
            if change.effective_from is None:
                change.effective_from = now
            elif change.effective_from < now - EFFECTIVE_FROM_SKEW:
                raise errors.ValidationError(
                    f"effective_from: {iso(change.effective_from)} has passed; reject this change and propose "
                    "it again (an approved price never applies backwards)",
                    field="effective_from",
                )
        change.status = TierPriceChange.Status.APPROVED if approve else TierPriceChange.Status.REJECTED
        change.decided_by, change.decided_at, change.decision_note = actor.identity, now, note.strip()
        change.save(update_fields=["status", "effective_from", "decided_by", "decided_at", "decision_note"])
        # This process's search pages show the decision at once; others within
        # TIER_PRICE_CACHE_SECONDS (selectors.tier_prices_shown).
        transaction.on_commit(selectors.forget_price_schedule)
        _record(
            change,
            action=f"tier_price.{verb}",
            event=EVENT_APPROVED if approve else EVENT_REJECTED,
            actor=actor,
            before=before,
        )
    return change


def tier_price_approve(*, change_id: int, actor: Actor, note: str = "") -> TierPriceChange:
    """The second pair of eyes: a different user than the proposer approves the price."""
    return _decide(change_id=change_id, actor=actor, approve=True, note=note)


def tier_price_reject(*, change_id: int, actor: Actor, note: str = "") -> TierPriceChange:
    return _decide(change_id=change_id, actor=actor, approve=False, note=note)


def price_for_number(number: Number, at: datetime) -> TierPriceChange | None:
    """The tier price a reserve/assign of this number records: None for a standard number
    (and then no query at all), else the tier's price in force at `at`."""
    if not number.vanity or not number.vanity_tier:
        return None
    return selectors.tier_price_in_force(number.vanity_tier, at)
