"""Every state change of a number (DESIGN §2.1, §2.2). One function per action.

Each runs in one transaction that writes the number (through cas.py), its reservation
or lease rows, an audit event, an outbox event and the idempotency record, and schedules
the lease-cache refresh for after commit. REST views, gRPC servicers, admin actions and
jobs all call these functions; none of them writes a Number itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_append
from numbering import cas, errors, idempotency, lease_cache, lifecycle, reservation_ttl, rls
from numbering.actors import Actor, ActorKind
from numbering.formats import normalize_number
from numbering.lifecycle import Action, NumberFacts, State, Transition
from numbering.models import Lease, Number, QuarantinePolicy, Reservation
from numbering.outbox import outbox_enqueue
from pools.models import Tenant, TenantPool

MAX_CAS_ATTEMPTS = 3
MAX_LEASE_DAYS = 3650

# Recall reasons that mean a compliance action (suspension, deletion, fraud): 365-day cool-off.
COMPLIANCE_REASONS = frozenset({"COMPLIANCE_SUSPENSION", "COMPLIANCE_DELETION", "TENANT_SUSPENDED", "TENANT_DELETED", "FRAUD"})
ASSIGNED_IN_ERROR = "ASSIGNED_IN_ERROR"


@dataclass
class MutationResult:
    number: dict[str, Any]
    reservation: dict[str, Any] | None = None
    lease: dict[str, Any] | None = None
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "reservation": self.reservation, "lease": self.lease}


# --- snapshots ---------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def lease_snapshot(lease: Lease | None) -> dict[str, Any] | None:
    if lease is None:
        return None
    return {
        "lease_id": str(lease.id),
        "tenant_id": str(lease.tenant_id),
        "status": lease.status,
        "starts_at": _iso(lease.starts_at),
        "expires_at": _iso(lease.expires_at),
        "term_days": lease.term_days,
        "auto_renew": lease.auto_renew,
        "renewals": lease.renewals,
    }


def reservation_snapshot(reservation: Reservation | None) -> dict[str, Any] | None:
    if reservation is None:
        return None
    return {
        "reservation_id": str(reservation.id),
        "tenant_id": str(reservation.tenant_id),
        "status": reservation.status,
        "created_at": _iso(reservation.created_at),
        "expires_at": _iso(reservation.expires_at),
    }


def number_snapshot(number: Number, lease: Lease | None = None) -> dict[str, Any]:
    return {
        "number": number.number,
        "kind": number.kind,
        "state": number.state,
        "operator_code": number.issuer.code,
        "vanity": number.vanity,
        "vanity_tier": number.vanity_tier,
        "version": number.version,
        "tenant_id": str(number.tenant_id) if number.tenant_id else None,
        "reserved_until": _iso(number.reserved_until),
        "quarantine_until": _iso(number.quarantine_until),
        "lease": lease_snapshot(lease) if lease and lease.status == Lease.Status.ACTIVE else None,
    }


# --- the shared skeleton of every action --------------------------------------------------

@dataclass
class _Context:
    """What one action knows while it runs (handed to its steps)."""

    action: Action
    actor: Actor
    now: datetime
    number: Number
    lease: Lease | None
    reservation: Reservation | None
    tenant_id: uuid.UUID | None
    transition: Transition
    pool: TenantPool | None = None
    event_data: dict[str, Any] = field(default_factory=dict)


def _facts(number: Number, lease: Lease | None) -> NumberFacts:
    return NumberFacts(
        state=State(number.state),
        version=number.version,
        holder=str(number.tenant_id) if number.tenant_id else None,
        reserved_until=number.reserved_until,
        quarantine_until=number.quarantine_until,
        lease_expires_at=lease.expires_at if lease else None,
    )


def _load(number: str) -> tuple[Number, Lease | None, Reservation | None]:
    row = Number.objects.select_related("issuer").filter(number=number).first()
    if row is None:
        raise errors.NumberNotFound(f"number {number} not found", field="number")
    lease = reservation = None
    if row.state == State.ASSIGNED:
        lease = Lease.objects.filter(number=row, status=Lease.Status.ACTIVE).first()
    elif row.state == State.RESERVED:
        reservation = Reservation.objects.filter(number=row, status=Reservation.Status.ACTIVE).first()
    return row, lease, reservation


def _acting_tenant(actor: Actor, tenant_id: uuid.UUID | str | None) -> uuid.UUID | None:
    """Tenants always act as themselves, whatever the request says."""
    if actor.is_tenant:
        return actor.tenant_id
    if tenant_id in (None, ""):
        return None
    try:
        return uuid.UUID(str(tenant_id))
    except ValueError:
        raise errors.ValidationError(f"tenant_id: {tenant_id!r} is not a UUID", field="tenant_id") from None


Step = Callable[[_Context], Any]


def _run(
    *,
    action: Action,
    number: str,
    actor: Actor,
    tenant_id: uuid.UUID | str | None,
    expected_version: int | None,
    idempotency_key: str | None,
    request: dict[str, Any],
    changes: Callable[[_Context], dict[str, Any]],
    effects: Step | None = None,
    prepare: Step | None = None,
) -> MutationResult:
    """read → check (lifecycle table) → prepare (quota, entitlement; no writes) → changes
    (column values; no writes) → CAS → effects (reservation / lease rows) → audit, outbox,
    idempotency record, cache refresh after commit.

    A lost CAS re-reads the row and checks again, so a refusal is classified from the row
    as it now is (DESIGN §2.2) and a version bump that left the state alone is retried,
    not reported as a conflict."""
    canonical_number = normalize_number(number)
    if expected_version is not None and expected_version < 0:
        raise errors.ValidationError(
            "expected_version: must not be negative (0 or absent = not checked)", field="expected_version"
        )
    expected_version = expected_version or None
    acting = _acting_tenant(actor, tenant_id)
    with transaction.atomic(), rls.scope_for(actor):
        if idempotency_key:
            fingerprint = {"action": action.value, "number": canonical_number, "tenant_id": str(acting), **request}
            stored = idempotency.claim(scope=actor.identity, key=idempotency_key, request=fingerprint)
            if stored is not None:
                return MutationResult(**json.loads(stored), replayed=True)
        now = timezone.now()
        for _attempt in range(MAX_CAS_ATTEMPTS):
            row, lease, reservation = _load(canonical_number)
            transition = lifecycle.check(
                action, _facts(row, lease), now=now,
                tenant_id=str(acting) if acting else None, expected_version=expected_version,
            )
            ctx = _Context(action, actor, now, row, lease, reservation, acting, transition)
            if prepare:
                prepare(ctx)
            new_version = cas.compare_and_set(
                number_id=row.id, transition=transition, changes=changes(ctx), now=now,
                tenant_id=acting, expected_version=expected_version,
            )
            if new_version is not None:
                break
        else:
            raise errors.NotAvailable(f"number {canonical_number} kept changing while we tried; try again")
        if effects:
            effects(ctx)
        result = _result(ctx)
        holder = result.number["tenant_id"] or (str(row.tenant_id) if row.tenant_id else None)
        audit_append(
            actor=actor.identity, action=action.value, object_type="number", object_id=canonical_number,
            tenant_id=holder, before=number_snapshot(row, lease), after=result.to_dict(), occurred_at=now,
        )
        outbox_enqueue(
            event_type=transition.event, aggregate_id=canonical_number, tenant_id=holder,
            sequence=result.number["version"],
            data={
                "number": canonical_number, "kind": row.kind, "operator_code": row.issuer.code,
                "action": action.value, "from_state": transition.source.value, "state": transition.target.value,
                **ctx.event_data,
            },
        )
        if idempotency_key:
            text = idempotency.store(scope=actor.identity, key=idempotency_key, response=result.to_dict())
            result = MutationResult(**json.loads(text))
        lease_cache.refresh_after_commit(result.number)
        return result


def _result(ctx: _Context) -> MutationResult:
    number = Number.objects.select_related("issuer").get(id=ctx.number.id)
    lease = Lease.objects.filter(number=number, status=Lease.Status.ACTIVE).first() or ctx.lease
    reservation = ctx.reservation
    if ctx.action in {Action.RESERVE, Action.EXTEND_RESERVATION}:
        reservation = Reservation.objects.filter(number=number, status=Reservation.Status.ACTIVE).first()
    return MutationResult(
        number=number_snapshot(number, lease),
        reservation=reservation_snapshot(reservation),
        lease=lease_snapshot(lease),
    )


# --- tenant checks ------------------------------------------------------------------------

def _tenant(tenant_id: uuid.UUID) -> Tenant:
    tenant = Tenant.objects.filter(id=tenant_id).first()
    if tenant is None:
        raise errors.TenantNotFound(f"tenant {tenant_id} not found", field="tenant_id")
    return tenant


def _require_tenant(ctx: _Context) -> uuid.UUID:
    if ctx.tenant_id is None:
        raise errors.ValidationError(f"tenant_id: required to {ctx.action.value} a number", field="tenant_id")
    return ctx.tenant_id


def _active_pool(tenant_id: uuid.UUID, *, lock: bool) -> TenantPool:
    tenant = _tenant(tenant_id)
    if tenant.status != Tenant.Status.ACTIVE:
        raise errors.TenantNotActive(f"tenant {tenant_id} is {tenant.status}")
    qs = TenantPool.objects.select_for_update() if lock else TenantPool.objects
    pool = qs.filter(tenant_id=tenant_id).first()
    if pool is None:
        raise errors.NotAvailable(f"tenant {tenant_id} has no tenant pool; nothing can be reserved or assigned")
    return pool


def _check_entitlement_and_quota(ctx: _Context) -> TenantPool:
    """Entitlement (pool membership) and quota per kind. The tenant pool row lock
    serialises concurrent takes by one tenant, so two requests cannot both squeeze
    under the quota."""
    tenant_id = _require_tenant(ctx)
    pool = _active_pool(tenant_id, lock=True)
    number = ctx.number
    if number.pool_id is not None and not pool.inventory_pools.filter(id=number.pool_id).exists():
        raise errors.NotAvailable(f"number {number.number} is in a pool this tenant is not entitled to")
    already_held = number.tenant_id == tenant_id and number.state in lifecycle.HELD_STATES
    if not already_held:
        quota = pool.quota_for(number.kind)
        held = Number.objects.filter(tenant_id=tenant_id, kind=number.kind, state__in=list(lifecycle.HELD_STATES)).count()
        if held >= quota:
            raise errors.QuotaExceeded(f"quota for {number.kind} is {quota} and the tenant already holds {held}")
    return pool


def _quarantine_days(number: Number, *, reason: str = "", compliance: bool = False, by_ops: bool = False) -> int:
    if number.is_test:
        case = QuarantinePolicy.Case.TEST
    elif by_ops and reason == ASSIGNED_IN_ERROR:
        case = QuarantinePolicy.Case.ASSIGNED_IN_ERROR
    elif compliance or reason in COMPLIANCE_REASONS:
        case = QuarantinePolicy.Case.COMPLIANCE
    elif number.vanity:
        case = QuarantinePolicy.Case.VANITY
    elif number.kind == Number.Kind.SHORT_CODE:
        case = QuarantinePolicy.Case.SHORT_CODE
    else:
        case = QuarantinePolicy.Case.MSISDN
    policy = QuarantinePolicy.objects.filter(case=case).first()
    if policy is None:  # a missing policy must never shorten a cool-off
        return max(QuarantinePolicy.objects.values_list("days", flat=True), default=365)
    return policy.days


def _end_lease(ctx: _Context, status: str, reason: str) -> None:
    if ctx.lease is not None:
        ctx.lease.status, ctx.lease.ended_at, ctx.lease.end_reason = status, ctx.now, reason or status
        ctx.lease.save(update_fields=["status", "ended_at", "end_reason"])


def _end_reservation(ctx: _Context, status: str) -> None:
    if ctx.reservation is not None:
        ctx.reservation.status, ctx.reservation.ended_at = status, ctx.now
        ctx.reservation.save(update_fields=["status", "ended_at"])


def _leave_holder(ctx: _Context, days: int | None = None) -> dict[str, Any]:
    """Column changes for a number leaving RESERVED/ASSIGNED (quarantined when `days`)."""
    changes: dict[str, Any] = {"tenant_id": None, "last_tenant_id": ctx.number.tenant_id, "reserved_until": None}
    if ctx.number.state == State.ASSIGNED:
        changes["last_disconnected_at"] = ctx.now
    if ctx.lease is not None:
        ctx.event_data["lease_id"] = str(ctx.lease.id)
    if ctx.reservation is not None:
        ctx.event_data["reservation_id"] = str(ctx.reservation.id)
    if ctx.transition.target == State.QUARANTINED:
        assert days is not None
        changes["quarantine_until"] = ctx.now + timedelta(days=days)
        ctx.event_data["quarantine_until"] = changes["quarantine_until"].isoformat()
    return changes


def _ttl(ttl_seconds: int | None, pool: TenantPool | None) -> int:
    ttl = ttl_seconds or (pool.reservation_ttl_seconds if pool else 900)
    if not 1 <= ttl <= lifecycle.MAX_RESERVATION_SECONDS:
        raise errors.ValidationError(
            f"ttl_seconds: must be between 1 and {lifecycle.MAX_RESERVATION_SECONDS} (24 h), got {ttl}", field="ttl_seconds"
        )
    return ttl


# --- the actions --------------------------------------------------------------------------

def number_reserve(
    *, number: str, tenant_id: uuid.UUID | str | None, actor: Actor, ttl_seconds: int | None = None,
    expected_version: int | None = None, idempotency_key: str | None = None,
) -> MutationResult:
    if ttl_seconds is not None and ttl_seconds < 0:
        raise errors.ValidationError("ttl_seconds: must not be negative", field="ttl_seconds")

    def prepare(ctx: _Context) -> None:
        ctx.pool = _check_entitlement_and_quota(ctx)

    def changes(ctx: _Context) -> dict[str, Any]:
        until = ctx.now + timedelta(seconds=_ttl(ttl_seconds, ctx.pool))
        ctx.event_data["reserved_until"] = until.isoformat()
        return {"tenant_id": ctx.tenant_id, "reserved_until": until}

    def effects(ctx: _Context) -> None:
        reservation = Reservation.objects.create(
            number=ctx.number, tenant_id=ctx.tenant_id, created_at=ctx.now,
            expires_at=ctx.now + timedelta(seconds=_ttl(ttl_seconds, ctx.pool)), created_by=ctx.actor.identity,
        )
        ctx.event_data["reservation_id"] = str(reservation.id)
        reservation_ttl.schedule_ttl_after_commit(ctx.number.number, reservation.id, reservation.expires_at)

    return _run(
        action=Action.RESERVE, number=number, actor=actor, tenant_id=tenant_id, expected_version=expected_version,
        idempotency_key=idempotency_key, request={"ttl_seconds": ttl_seconds},
        prepare=prepare, changes=changes, effects=effects,
    )


def number_extend_reservation(
    *, number: str, tenant_id: uuid.UUID | str | None, actor: Actor, ttl_seconds: int | None = None,
    expected_version: int | None = None, idempotency_key: str | None = None,
) -> MutationResult:
    def until(ctx: _Context) -> datetime:
        assert ctx.reservation is not None
        pool = TenantPool.objects.filter(tenant_id=ctx.reservation.tenant_id).first()
        # Never past 24 h from the first reserve (DESIGN §2.1): clamp, and say so in the event.
        cap = ctx.reservation.created_at + timedelta(seconds=lifecycle.MAX_RESERVATION_SECONDS)
        value = min(ctx.now + timedelta(seconds=_ttl(ttl_seconds, pool)), cap)
        ctx.event_data.update({"reserved_until": value.isoformat(), "clamped": value == cap, "extended": True})
        return value

    def changes(ctx: _Context) -> dict[str, Any]:
        return {"reserved_until": until(ctx)}

    def effects(ctx: _Context) -> None:
        assert ctx.reservation is not None
        ctx.reservation.expires_at = until(ctx)
        ctx.reservation.save(update_fields=["expires_at"])
        ctx.event_data["reservation_id"] = str(ctx.reservation.id)
        reservation_ttl.schedule_ttl_after_commit(ctx.number.number, ctx.reservation.id, ctx.reservation.expires_at)

    return _run(
        action=Action.EXTEND_RESERVATION, number=number, actor=actor, tenant_id=tenant_id,
        expected_version=expected_version, idempotency_key=idempotency_key,
        request={"ttl_seconds": ttl_seconds}, changes=changes, effects=effects,
    )


def number_assign(
    *, number: str, tenant_id: uuid.UUID | str | None, actor: Actor, lease_days: int | None = None,
    auto_renew: bool | None = None, reservation_id: uuid.UUID | str | None = None,
    expected_version: int | None = None, idempotency_key: str | None = None,
) -> MutationResult:
    if lease_days is not None and not 0 <= lease_days <= MAX_LEASE_DAYS:
        raise errors.ValidationError(
            f"lease_days: must be between 1 and {MAX_LEASE_DAYS} (0 = pool default)", field="lease_days"
        )

    def prepare(ctx: _Context) -> None:
        ctx.pool = _check_entitlement_and_quota(ctx)
        if reservation_id and ctx.number.state == State.RESERVED and (
            ctx.reservation is None or str(ctx.reservation.id) != str(reservation_id)
        ):
            raise errors.ReservationExpired(
                f"reservation_id: {reservation_id} is not the number's active reservation", field="reservation_id"
            )

    def effects(ctx: _Context) -> None:
        assert ctx.pool is not None
        days = lease_days or ctx.pool.default_lease_days
        renew = ctx.pool.auto_renew_default if auto_renew is None else auto_renew
        _end_reservation(ctx, Reservation.Status.CONVERTED)
        lease = Lease.objects.create(
            number=ctx.number, tenant_id=ctx.tenant_id, reservation=ctx.reservation, starts_at=ctx.now,
            expires_at=ctx.now + timedelta(days=days), term_days=days, auto_renew=renew,
            created_by=ctx.actor.identity,
        )
        ctx.reservation = None
        ctx.event_data.update(
            {"lease_id": str(lease.id), "expires_at": lease.expires_at.isoformat(), "auto_renew": renew}
        )

    return _run(
        action=Action.ASSIGN, number=number, actor=actor, tenant_id=tenant_id, expected_version=expected_version,
        idempotency_key=idempotency_key,
        request={
            "lease_days": lease_days, "auto_renew": auto_renew,
            "reservation_id": str(reservation_id) if reservation_id else None,
        },
        prepare=prepare, changes=lambda ctx: {"tenant_id": ctx.tenant_id, "reserved_until": None}, effects=effects,
    )


def number_release(
    *, number: str, actor: Actor, tenant_id: uuid.UUID | str | None = None, reason: str = "",
    expected_version: int | None = None, idempotency_key: str | None = None,
) -> MutationResult:
    def changes(ctx: _Context) -> dict[str, Any]:
        ctx.event_data["reason"] = reason
        if ctx.transition.target == State.AVAILABLE:
            return _leave_holder(ctx)
        return _leave_holder(ctx, _quarantine_days(ctx.number, reason=reason, by_ops=ctx.actor.kind is ActorKind.USER))

    def effects(ctx: _Context) -> None:
        _end_reservation(ctx, Reservation.Status.CANCELLED)
        _end_lease(ctx, Lease.Status.RELEASED, reason)

    return _run(
        action=Action.RELEASE, number=number, actor=actor, tenant_id=tenant_id, expected_version=expected_version,
        idempotency_key=idempotency_key, request={"reason": reason}, changes=changes, effects=effects,
    )


def number_recall(
    *, number: str, actor: Actor, reason: str = "", compliance: bool = False,
    expected_version: int | None = None, idempotency_key: str | None = None,
) -> MutationResult:
    _ops_only(actor, Action.RECALL)

    def changes(ctx: _Context) -> dict[str, Any]:
        ctx.event_data.update({"reason": reason, "compliance": compliance})
        extra = {"burned_at": ctx.now} if reason == "FRAUD" else {}
        if ctx.transition.target == State.AVAILABLE:
            return {**_leave_holder(ctx), **extra}
        return {**_leave_holder(ctx, _quarantine_days(ctx.number, reason=reason, compliance=compliance)), **extra}

    def effects(ctx: _Context) -> None:
        _end_reservation(ctx, Reservation.Status.RECALLED)
        _end_lease(ctx, Lease.Status.RECALLED, reason)

    return _run(
        action=Action.RECALL, number=number, actor=actor, tenant_id=None, expected_version=expected_version,
        idempotency_key=idempotency_key, request={"reason": reason, "compliance": compliance},
        changes=changes, effects=effects,
    )


def number_expire_reservation(
    *, number: str, actor: Actor | None = None, reservation_id: uuid.UUID | str | None = None,
) -> MutationResult:
    """TTL path: the listener passes the reservation it saw expire; the CAS only fires if
    that reservation is still the active one and past its deadline."""

    def prepare(ctx: _Context) -> None:
        if reservation_id and (ctx.reservation is None or str(ctx.reservation.id) != str(reservation_id)):
            raise errors.InvalidTransition(f"reservation {reservation_id} is no longer active")

    return _run(
        action=Action.EXPIRE_RESERVATION, number=number, actor=actor or Actor.system("reservation-expiry"),
        tenant_id=None, expected_version=None, idempotency_key=None, request={}, prepare=prepare,
        changes=lambda ctx: _leave_holder(ctx),
        effects=lambda ctx: _end_reservation(ctx, Reservation.Status.EXPIRED),
    )


def number_renew(
    *, number: str, actor: Actor, tenant_id: uuid.UUID | str | None = None,
    expected_version: int | None = None, idempotency_key: str | None = None,
) -> MutationResult:
    def prepare(ctx: _Context) -> None:
        if ctx.lease is None:
            raise errors.InvalidTransition(f"number {ctx.number.number} has no active lease to renew")
        if ctx.number.tenant_id is not None:
            _active_pool(ctx.number.tenant_id, lock=False)  # suspended tenants are not renewed

    def effects(ctx: _Context) -> None:
        assert ctx.lease is not None
        ctx.lease.expires_at += timedelta(days=ctx.lease.term_days)
        ctx.lease.renewals += 1
        ctx.lease.save(update_fields=["expires_at", "renewals"])
        ctx.event_data.update({"lease_id": str(ctx.lease.id), "expires_at": ctx.lease.expires_at.isoformat()})

    return _run(
        action=Action.RENEW, number=number, actor=actor, tenant_id=tenant_id, expected_version=expected_version,
        idempotency_key=idempotency_key, request={}, prepare=prepare, changes=lambda ctx: {}, effects=effects,
    )


def number_expire_lease(*, number: str, actor: Actor | None = None) -> MutationResult:
    return _run(
        action=Action.EXPIRE_LEASE, number=number, actor=actor or Actor.system("lease-expiry"), tenant_id=None,
        expected_version=None, idempotency_key=None, request={},
        changes=lambda ctx: _leave_holder(ctx, _quarantine_days(ctx.number)),
        effects=lambda ctx: _end_lease(ctx, Lease.Status.EXPIRED, "EXPIRED"),
    )


def number_end_quarantine(*, number: str, actor: Actor | None = None) -> MutationResult:
    return _run(
        action=Action.END_QUARANTINE, number=number, actor=actor or Actor.system("quarantine-sweep"),
        tenant_id=None, expected_version=None, idempotency_key=None, request={},
        changes=lambda ctx: {"quarantine_until": None, "last_tenant_id": None},
    )


def _ops_only(actor: Actor, action: Action) -> None:
    if actor.is_tenant:
        raise errors.ValidationError(f"action: {action.value} is an ops action", field="action")


def number_retire(
    *, number: str, actor: Actor, reason: str = "", expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    _ops_only(actor, Action.RETIRE)

    def changes(ctx: _Context) -> dict[str, Any]:
        ctx.event_data["reason"] = reason
        return {"quarantine_until": None, "last_tenant_id": None}

    return _run(
        action=Action.RETIRE, number=number, actor=actor, tenant_id=None, expected_version=expected_version,
        idempotency_key=idempotency_key, request={"reason": reason}, changes=changes,
    )


def number_reinstate(
    *, number: str, actor: Actor, reason: str = "", expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    _ops_only(actor, Action.REINSTATE)

    def changes(ctx: _Context) -> dict[str, Any]:
        until = ctx.now + timedelta(days=_quarantine_days(ctx.number))
        ctx.event_data.update({"reason": reason, "quarantine_until": until.isoformat()})
        return {"quarantine_until": until}

    return _run(
        action=Action.REINSTATE, number=number, actor=actor, tenant_id=None, expected_version=expected_version,
        idempotency_key=idempotency_key, request={"reason": reason}, changes=changes,
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
