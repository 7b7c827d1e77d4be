"""One service per action of the lifecycle table (DESIGN §2.1). Each says only what is
special about it; numbering.services.skeleton runs it (CAS, audit, outbox, idempotency).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from core import errors
from core.actors import Actor, ActorKind
from core.sqlbatch import Fragment
from numbering import lifecycle, reservation_ttl, snapshots
from numbering.lifecycle import Action, State
from numbering.models import Lease, Reservation
from numbering.services.rules import (
    MAX_LEASE_DAYS,
    active_pool,
    check_entitlement_and_quota,
    check_lease_term,
    check_reason,
    end_lease,
    end_reservation,
    insert_row,
    leave_holder,
    ops_only,
    quarantine_days,
    require_tenant,
    tenant_pool,
    ttl,
)
from numbering.services.skeleton import Context, MutationResult, run
from numbering.services.tiers import price_for_number


def number_reserve(
    *,
    number: str,
    tenant_id: uuid.UUID | str | None,
    actor: Actor,
    ttl_seconds: int | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    if ttl_seconds is not None and ttl_seconds < 0:
        raise errors.ValidationError("ttl_seconds: must not be negative", field="ttl_seconds")

    def prepare(ctx: Context) -> None:
        ctx.pool = check_entitlement_and_quota(ctx)

    def changes(ctx: Context) -> dict[str, Any]:
        until = ctx.now + timedelta(seconds=ttl(ttl_seconds, ctx.pool))
        ctx.event_data["reserved_until"] = until.isoformat()
        return {"tenant_id": ctx.tenant_id, "reserved_until": until}

    def effects(ctx: Context) -> list[Fragment]:
        # A vanity code's reservation holds the tier price in force now (ADR 1650): one
        # indexed read, only for vanity numbers.
        price = price_for_number(ctx.number, ctx.now)
        reservation = ctx.reservation = Reservation(
            number_id=ctx.number.id,
            tenant_id=require_tenant(ctx),
            status=Reservation.Status.ACTIVE,
            created_at=ctx.now,
            expires_at=ctx.now + timedelta(seconds=ttl(ttl_seconds, ctx.pool)),
            created_by=ctx.actor.identity,
            **snapshots.price_columns(price),
        )
        ctx.event_data["reservation_id"] = str(reservation.id)
        if price is not None:
            ctx.event_data["price"] = snapshots.price_snapshot(price)
        ctx.on_success.append(
            lambda: reservation_ttl.schedule_ttl_after_commit(ctx.number.number, reservation.id, reservation.expires_at)
        )
        return [insert_row(reservation)]

    return run(
        action=Action.RESERVE,
        number=number,
        actor=actor,
        tenant_id=tenant_id,
        expected_version=expected_version,
        idempotency_key=idempotency_key,
        request={"ttl_seconds": ttl_seconds},
        prepare=prepare,
        changes=changes,
        effects=effects,
    )


def _reservation_price_columns(reservation: Reservation | None) -> dict[str, Any]:
    """The price a reservation recorded, as Lease columns (empty: it recorded none)."""
    if reservation is None or snapshots.recorded_price(reservation) is None:
        return {}
    return {
        "tier_code": reservation.tier_code,
        "monthly_price": reservation.monthly_price,
        "setup_fee": reservation.setup_fee,
        "currency": reservation.currency,
    }


def number_extend_reservation(
    *,
    number: str,
    tenant_id: uuid.UUID | str | None,
    actor: Actor,
    ttl_seconds: int | None = None,
    until: datetime | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    """Push a live reservation's deadline out (ADR 1640). The new deadline is `until`, or
    `ttl_seconds` from now, or (neither: the admin button) the pool's TTL from now clamped to
    the cap. The cap is 24 h from the first reserve (DESIGN §2.1): a deadline the caller asked
    for past it is refused naming the field and the latest allowed deadline, never clamped
    silently; so is one that would not move the deadline later (an extension never shortens)."""
    if ttl_seconds is not None and until is not None:
        raise errors.ValidationError("until: send either ttl_seconds or until, not both", field="until")
    if ttl_seconds is not None and not 1 <= ttl_seconds <= lifecycle.MAX_RESERVATION_SECONDS:
        raise errors.ValidationError(
            f"ttl_seconds: must be between 1 and {lifecycle.MAX_RESERVATION_SECONDS} (24 h), got {ttl_seconds}",
            field="ttl_seconds",
        )
    if until is not None and (until.tzinfo is None or until.utcoffset() is None):
        raise errors.ValidationError("until: must carry a time zone (ISO 8601 with offset or Z)", field="until")
    field = "until" if until is not None else "ttl_seconds"
    explicit = until is not None or ttl_seconds is not None
    decided: dict[str, datetime] = {}  # changes() decides, effects() writes the same value

    def new_until(ctx: Context) -> datetime:
        assert ctx.reservation is not None
        cap = ctx.reservation.created_at + timedelta(seconds=lifecycle.MAX_RESERVATION_SECONDS)
        if not explicit:
            pool = tenant_pool(ctx.reservation.tenant_id)
            value = min(ctx.now + timedelta(seconds=ttl(None, pool)), cap)
            ctx.event_data.update({"reserved_until": value.isoformat(), "clamped": value == cap, "extended": True})
            return value
        value = until if until is not None else ctx.now + timedelta(seconds=ttl_seconds or 0)
        if value > cap:
            raise errors.ValidationError(
                f"{field}: the reservation may run until {cap.isoformat()} at most "
                f"({lifecycle.MAX_RESERVATION_SECONDS} s from the first reserve); asked for {value.isoformat()}",
                field=field,
            )
        current = ctx.number.reserved_until
        if current is not None and value <= current:
            raise errors.ValidationError(
                f"{field}: {value.isoformat()} is not later than the current reserved_until {current.isoformat()}; "
                "an extension never shortens a reservation",
                field=field,
            )
        ctx.event_data.update({"reserved_until": value.isoformat(), "clamped": False, "extended": True})
        return value

    def changes(ctx: Context) -> dict[str, Any]:
        decided["reserved_until"] = new_until(ctx)
        return {"reserved_until": decided["reserved_until"]}

    def effects(ctx: Context) -> list[Fragment]:
        reservation = ctx.reservation
        assert reservation is not None
        reservation.expires_at = decided["reserved_until"]
        ctx.event_data["reservation_id"] = str(reservation.id)
        ctx.on_success.append(
            lambda: reservation_ttl.schedule_ttl_after_commit(ctx.number.number, reservation.id, reservation.expires_at)
        )
        return [
            Fragment(
                "UPDATE numbering_reservation SET expires_at = %s WHERE id = %s AND EXISTS (SELECT 1 FROM cas)",
                [reservation.expires_at, reservation.id],
            )
        ]

    return run(
        action=Action.EXTEND_RESERVATION,
        number=number,
        actor=actor,
        tenant_id=tenant_id,
        expected_version=expected_version,
        idempotency_key=idempotency_key,
        # `until` joins the fingerprint only when sent: keys stored before it existed still replay.
        request={"ttl_seconds": ttl_seconds, **({"until": until.isoformat()} if until is not None else {})},
        changes=changes,
        effects=effects,
    )


def number_assign(
    *,
    number: str,
    tenant_id: uuid.UUID | str | None,
    actor: Actor,
    lease_days: int | None = None,
    auto_renew: bool | None = None,
    reservation_id: uuid.UUID | str | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    if lease_days is not None and not 0 <= lease_days <= MAX_LEASE_DAYS:
        raise errors.ValidationError(
            f"lease_days: must be between 1 and {MAX_LEASE_DAYS} (0 = pool default)", field="lease_days"
        )

    def prepare(ctx: Context) -> None:
        ctx.pool = check_entitlement_and_quota(ctx)
        check_lease_term(ctx.actor, lease_days, ctx.pool)
        if (
            reservation_id
            and ctx.number.state == State.RESERVED
            and (ctx.reservation is None or str(ctx.reservation.id) != str(reservation_id))
        ):
            raise errors.ReservationExpired(
                f"reservation_id: {reservation_id} is not the number's active reservation", field="reservation_id"
            )

    def effects(ctx: Context) -> list[Fragment]:
        assert ctx.pool is not None
        days = lease_days or ctx.pool.default_lease_days
        renew = ctx.pool.auto_renew_default if auto_renew is None else auto_renew
        # The lease keeps the price the tenant was quoted: its reservation's, else (a direct
        # assign, or a reservation of the release before prices) the tier price in force now.
        price = _reservation_price_columns(ctx.reservation)
        if not price:
            price = snapshots.price_columns(price_for_number(ctx.number, ctx.now))
        writes = end_reservation(ctx, Reservation.Status.CONVERTED)
        lease = ctx.lease = Lease(
            number_id=ctx.number.id,
            tenant_id=require_tenant(ctx),
            reservation_id=ctx.reservation.id if ctx.reservation else None,
            status=Lease.Status.ACTIVE,
            starts_at=ctx.now,
            expires_at=ctx.now + timedelta(days=days),
            term_days=days,
            auto_renew=renew,
            renewals=0,
            end_reason="",
            created_by=ctx.actor.identity,
            **price,
        )
        writes.append(insert_row(lease))
        ctx.reservation = None
        ctx.event_data.update(
            {
                "lease_id": str(lease.id),
                "expires_at": lease.expires_at.isoformat(),
                "auto_renew": renew,
                "term_days": days,
                **({"price": snapshots.recorded_price(lease)} if price else {}),
            }
        )
        return writes

    return run(
        action=Action.ASSIGN,
        number=number,
        actor=actor,
        tenant_id=tenant_id,
        expected_version=expected_version,
        idempotency_key=idempotency_key,
        request={
            "lease_days": lease_days,
            "auto_renew": auto_renew,
            "reservation_id": str(reservation_id) if reservation_id else None,
        },
        prepare=prepare,
        changes=lambda ctx: {"tenant_id": ctx.tenant_id, "reserved_until": None},
        effects=effects,
    )


def number_release(
    *,
    number: str,
    actor: Actor,
    tenant_id: uuid.UUID | str | None = None,
    reason: str = "",
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    check_reason(reason, actor)

    def changes(ctx: Context) -> dict[str, Any]:
        ctx.event_data["reason"] = reason
        if ctx.transition.target == State.AVAILABLE:
            return leave_holder(ctx)
        return leave_holder(ctx, quarantine_days(ctx.number, reason=reason, by_ops=ctx.actor.kind is ActorKind.USER))

    def effects(ctx: Context) -> list[Fragment]:
        return [*end_reservation(ctx, Reservation.Status.CANCELLED), *end_lease(ctx, Lease.Status.RELEASED, reason)]

    return run(
        action=Action.RELEASE,
        number=number,
        actor=actor,
        tenant_id=tenant_id,
        expected_version=expected_version,
        idempotency_key=idempotency_key,
        request={"reason": reason},
        changes=changes,
        effects=effects,
    )


def number_recall(
    *,
    number: str,
    actor: Actor,
    reason: str = "",
    compliance: bool = False,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    ops_only(actor, Action.RECALL)
    check_reason(reason, actor)

    def changes(ctx: Context) -> dict[str, Any]:
        ctx.event_data.update({"reason": reason, "compliance": compliance})
        extra = {"burned_at": ctx.now} if reason == "FRAUD" else {}
        if ctx.transition.target == State.AVAILABLE:
            return {**leave_holder(ctx), **extra}
        return {**leave_holder(ctx, quarantine_days(ctx.number, reason=reason, compliance=compliance)), **extra}

    def effects(ctx: Context) -> list[Fragment]:
        return [*end_reservation(ctx, Reservation.Status.RECALLED), *end_lease(ctx, Lease.Status.RECALLED, reason)]

    return run(
        action=Action.RECALL,
        number=number,
        actor=actor,
        tenant_id=None,
        expected_version=expected_version,
        idempotency_key=idempotency_key,
        request={"reason": reason, "compliance": compliance},
        changes=changes,
        effects=effects,
    )


def number_expire_reservation(
    *,
    number: str,
    actor: Actor | None = None,
    reservation_id: uuid.UUID | str | None = None,
) -> MutationResult:
    """TTL path: the listener passes the reservation it saw expire; the CAS only fires if
    that reservation is still the active one and past its deadline."""

    def prepare(ctx: Context) -> None:
        if reservation_id and (ctx.reservation is None or str(ctx.reservation.id) != str(reservation_id)):
            raise errors.InvalidTransition(f"reservation {reservation_id} is no longer active")

    return run(
        action=Action.EXPIRE_RESERVATION,
        number=number,
        actor=actor or Actor.system("reservation-expiry"),
        tenant_id=None,
        expected_version=None,
        idempotency_key=None,
        request={},
        prepare=prepare,
        changes=lambda ctx: leave_holder(ctx),
        effects=lambda ctx: end_reservation(ctx, Reservation.Status.EXPIRED),
    )


def number_renew(
    *,
    number: str,
    actor: Actor,
    tenant_id: uuid.UUID | str | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    def prepare(ctx: Context) -> None:
        if ctx.lease is None:
            raise errors.InvalidTransition(f"number {ctx.number.number} has no active lease to renew")
        if ctx.number.tenant_id is not None:
            active_pool(ctx.number.tenant_id, lock=False)  # suspended tenants are not renewed

    def effects(ctx: Context) -> list[Fragment]:
        assert ctx.lease is not None
        ctx.lease.expires_at += timedelta(days=ctx.lease.term_days)
        ctx.lease.renewals += 1
        ctx.event_data.update(
            {
                "lease_id": str(ctx.lease.id),
                "expires_at": ctx.lease.expires_at.isoformat(),
                "term_days": ctx.lease.term_days,
                # A lease keeps the price recorded at assign for its whole life (ADR 1650).
                **({"price": price} if (price := snapshots.recorded_price(ctx.lease)) else {}),
            }
        )
        return [
            Fragment(
                "UPDATE numbering_lease SET expires_at = %s, renewals = %s"
                " WHERE id = %s AND EXISTS (SELECT 1 FROM cas)",
                [ctx.lease.expires_at, ctx.lease.renewals, ctx.lease.id],
            )
        ]

    return run(
        action=Action.RENEW,
        number=number,
        actor=actor,
        tenant_id=tenant_id,
        expected_version=expected_version,
        idempotency_key=idempotency_key,
        request={},
        prepare=prepare,
        changes=lambda ctx: {},
        effects=effects,
    )


def number_expire_lease(*, number: str, actor: Actor | None = None) -> MutationResult:
    return run(
        action=Action.EXPIRE_LEASE,
        number=number,
        actor=actor or Actor.system("lease-expiry"),
        tenant_id=None,
        expected_version=None,
        idempotency_key=None,
        request={},
        changes=lambda ctx: leave_holder(ctx, quarantine_days(ctx.number)),
        effects=lambda ctx: end_lease(ctx, Lease.Status.EXPIRED, "EXPIRED"),
    )


def number_end_quarantine(*, number: str, actor: Actor | None = None) -> MutationResult:
    return run(
        action=Action.END_QUARANTINE,
        number=number,
        actor=actor or Actor.system("quarantine-sweep"),
        tenant_id=None,
        expected_version=None,
        idempotency_key=None,
        request={},
        changes=lambda ctx: {"quarantine_until": None, "last_tenant_id": None},
    )


def number_retire(
    *,
    number: str,
    actor: Actor,
    reason: str = "",
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    ops_only(actor, Action.RETIRE)
    check_reason(reason, actor)

    def changes(ctx: Context) -> dict[str, Any]:
        ctx.event_data["reason"] = reason
        return {"quarantine_until": None, "last_tenant_id": None}

    return run(
        action=Action.RETIRE,
        number=number,
        actor=actor,
        tenant_id=None,
        expected_version=expected_version,
        idempotency_key=idempotency_key,
        request={"reason": reason},
        changes=changes,
    )


def number_reinstate(
    *,
    number: str,
    actor: Actor,
    reason: str = "",
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    ops_only(actor, Action.REINSTATE)
    check_reason(reason, actor)

    def changes(ctx: Context) -> dict[str, Any]:
        until = ctx.now + timedelta(days=quarantine_days(ctx.number))
        ctx.event_data.update({"reason": reason, "quarantine_until": until.isoformat()})
        return {"quarantine_until": until}

    return run(
        action=Action.REINSTATE,
        number=number,
        actor=actor,
        tenant_id=None,
        expected_version=expected_version,
        idempotency_key=idempotency_key,
        request={"reason": reason},
        changes=changes,
    )


# Every action of the lifecycle table has its service (the transition test relies on it).
SERVICES: dict[Action, Callable[..., MutationResult]] = {
    Action.RESERVE: number_reserve,
    Action.EXTEND_RESERVATION: number_extend_reservation,
    Action.ASSIGN: number_assign,
    Action.RELEASE: number_release,
    Action.EXPIRE_RESERVATION: number_expire_reservation,
    Action.RENEW: number_renew,
    Action.EXPIRE_LEASE: number_expire_lease,
    Action.RECALL: number_recall,
    Action.END_QUARANTINE: number_end_quarantine,
    Action.RETIRE: number_retire,
    Action.REINSTATE: number_reinstate,
}
assert set(SERVICES) == set(Action)
