"""Every state change of a number (DESIGN §2.1, §2.2). One function per action.

Each runs in one transaction that writes the number (through cas.py), its reservation
or lease rows, an audit event, an outbox event and the idempotency record, and schedules
the lease-cache refresh for after commit. REST views, gRPC servicers, admin actions and
jobs all call these functions; none of them writes a Number itself.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from prometheus_client import Counter

from audit.services import audit_append
from numbering import anomaly, cas, errors, idempotency, lease_cache, lifecycle, reservation_ttl, rls
from numbering.actors import Actor, ActorKind
from numbering.formats import normalize_number, parse_uuid
from numbering.lifecycle import Action, NumberFacts, State, Transition
from numbering.models import Lease, Number, QuarantinePolicy, Reservation
from numbering.outbox import outbox_enqueue
from pools.models import Tenant, TenantPool

MAX_CAS_ATTEMPTS = 3

TRANSITIONS = Counter(
    "numbering_lifecycle_transitions_total",
    "Lifecycle actions by result (ok, replayed or the error code)",
    ["action", "result"],
)
CAS_CONFLICTS = Counter(
    "numbering_cas_conflicts_total", "CONFLICT refusals: the caller's expected_version was stale", ["action"]
)
MAX_LEASE_DAYS = 3650

# Recall reasons that mean a compliance action (suspension, deletion, fraud): 365-day cool-off.
COMPLIANCE_REASONS = frozenset(
    {"COMPLIANCE_SUSPENSION", "COMPLIANCE_DELETION", "TENANT_SUSPENDED", "TENANT_DELETED", "FRAUD"}
)
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
    return parse_uuid(tenant_id, field="tenant_id")


Step = Callable[[_Context], Any]


def _run_action(
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
    fingerprint = {"action": action.value, "number": canonical_number, "tenant_id": str(acting), **request}
    if idempotency_key:
        cached = idempotency.cached_replay(scope=actor.identity, key=idempotency_key, request=fingerprint)
        if cached is not None:
            return MutationResult(**json.loads(cached), replayed=True)
    with transaction.atomic(), rls.scope_for(actor):
        if idempotency_key:
            stored = idempotency.claim(scope=actor.identity, key=idempotency_key, request=fingerprint)
            if stored is not None:
                return MutationResult(**json.loads(stored), replayed=True)
        now = timezone.now()
        for _attempt in range(MAX_CAS_ATTEMPTS):
            row, lease, reservation = _load(canonical_number)
            try:
                transition = lifecycle.check(
                    action,
                    _facts(row, lease),
                    now=now,
                    tenant_id=str(acting) if acting else None,
                    expected_version=expected_version,
                )
            except errors.Conflict:
                if acting is not None:  # CONFLICT spikes per tenant feed the anomaly detector
                    anomaly.record_conflict(acting)
                raise
            ctx = _Context(action, actor, now, row, lease, reservation, acting, transition)
            if prepare:
                prepare(ctx)
            new_version = cas.compare_and_set(
                number_id=row.id,
                transition=transition,
                changes=changes(ctx),
                now=now,
                tenant_id=acting,
                expected_version=expected_version,
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
            actor=actor.identity,
            action=action.value,
            object_type="number",
            object_id=canonical_number,
            tenant_id=holder,
            before=number_snapshot(row, lease),
            after=result.to_dict(),
            occurred_at=now,
        )
        outbox_enqueue(
            event_type=transition.event,
            aggregate_id=canonical_number,
            tenant_id=holder,
            sequence=result.number["version"],
            data={
                "number": canonical_number,
                "kind": row.kind,
                "operator_code": row.issuer.code,
                "action": action.value,
                "from_state": transition.source.value,
                "state": transition.target.value,
                **ctx.event_data,
            },
        )
        if idempotency_key:
            text = idempotency.store(scope=actor.identity, key=idempotency_key, response=result.to_dict())
            result = MutationResult(**json.loads(text))
        lease_cache.refresh_after_commit(result.number)
        return result


def _run(*, action: Action, **kwargs: Any) -> MutationResult:
    """_run_action, counted: every outcome of every action by its result (DESIGN §8)."""
    try:
        result = _run_action(action=action, **kwargs)
    except errors.DomainError as exc:
        TRANSITIONS.labels(action.value, exc.code.lower()).inc()
        if isinstance(exc, errors.Conflict):
            CAS_CONFLICTS.labels(action.value).inc()
        raise
    TRANSITIONS.labels(action.value, "replayed" if result.replayed else "ok").inc()
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
        held = Number.objects.filter(
            tenant_id=tenant_id, kind=number.kind, state__in=list(lifecycle.HELD_STATES)
        ).count()
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
            f"ttl_seconds: must be between 1 and {lifecycle.MAX_RESERVATION_SECONDS} (24 h), got {ttl}",
            field="ttl_seconds",
        )
    return ttl


# --- the actions --------------------------------------------------------------------------


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

    def prepare(ctx: _Context) -> None:
        ctx.pool = _check_entitlement_and_quota(ctx)

    def changes(ctx: _Context) -> dict[str, Any]:
        until = ctx.now + timedelta(seconds=_ttl(ttl_seconds, ctx.pool))
        ctx.event_data["reserved_until"] = until.isoformat()
        return {"tenant_id": ctx.tenant_id, "reserved_until": until}

    def effects(ctx: _Context) -> None:
        reservation = Reservation.objects.create(
            number=ctx.number,
            tenant_id=_require_tenant(ctx),
            created_at=ctx.now,
            expires_at=ctx.now + timedelta(seconds=_ttl(ttl_seconds, ctx.pool)),
            created_by=ctx.actor.identity,
        )
        ctx.event_data["reservation_id"] = str(reservation.id)
        reservation_ttl.schedule_ttl_after_commit(ctx.number.number, reservation.id, reservation.expires_at)

    return _run(
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


def number_extend_reservation(
    *,
    number: str,
    tenant_id: uuid.UUID | str | None,
    actor: Actor,
    ttl_seconds: int | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
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
        action=Action.EXTEND_RESERVATION,
        number=number,
        actor=actor,
        tenant_id=tenant_id,
        expected_version=expected_version,
        idempotency_key=idempotency_key,
        request={"ttl_seconds": ttl_seconds},
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

    def prepare(ctx: _Context) -> None:
        ctx.pool = _check_entitlement_and_quota(ctx)
        if (
            reservation_id
            and ctx.number.state == State.RESERVED
            and (ctx.reservation is None or str(ctx.reservation.id) != str(reservation_id))
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
            number=ctx.number,
            tenant_id=_require_tenant(ctx),
            reservation=ctx.reservation,
            starts_at=ctx.now,
            expires_at=ctx.now + timedelta(days=days),
            term_days=days,
            auto_renew=renew,
            created_by=ctx.actor.identity,
        )
        ctx.reservation = None
        ctx.event_data.update(
            {"lease_id": str(lease.id), "expires_at": lease.expires_at.isoformat(), "auto_renew": renew}
        )

    return _run(
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
    def changes(ctx: _Context) -> dict[str, Any]:
        ctx.event_data["reason"] = reason
        if ctx.transition.target == State.AVAILABLE:
            return _leave_holder(ctx)
        return _leave_holder(ctx, _quarantine_days(ctx.number, reason=reason, by_ops=ctx.actor.kind is ActorKind.USER))

    def effects(ctx: _Context) -> None:
        _end_reservation(ctx, Reservation.Status.CANCELLED)
        _end_lease(ctx, Lease.Status.RELEASED, reason)

    return _run(
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

    def prepare(ctx: _Context) -> None:
        if reservation_id and (ctx.reservation is None or str(ctx.reservation.id) != str(reservation_id)):
            raise errors.InvalidTransition(f"reservation {reservation_id} is no longer active")

    return _run(
        action=Action.EXPIRE_RESERVATION,
        number=number,
        actor=actor or Actor.system("reservation-expiry"),
        tenant_id=None,
        expected_version=None,
        idempotency_key=None,
        request={},
        prepare=prepare,
        changes=lambda ctx: _leave_holder(ctx),
        effects=lambda ctx: _end_reservation(ctx, Reservation.Status.EXPIRED),
    )


def number_renew(
    *,
    number: str,
    actor: Actor,
    tenant_id: uuid.UUID | str | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
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
    return _run(
        action=Action.EXPIRE_LEASE,
        number=number,
        actor=actor or Actor.system("lease-expiry"),
        tenant_id=None,
        expected_version=None,
        idempotency_key=None,
        request={},
        changes=lambda ctx: _leave_holder(ctx, _quarantine_days(ctx.number)),
        effects=lambda ctx: _end_lease(ctx, Lease.Status.EXPIRED, "EXPIRED"),
    )


def number_end_quarantine(*, number: str, actor: Actor | None = None) -> MutationResult:
    return _run(
        action=Action.END_QUARANTINE,
        number=number,
        actor=actor or Actor.system("quarantine-sweep"),
        tenant_id=None,
        expected_version=None,
        idempotency_key=None,
        request={},
        changes=lambda ctx: {"quarantine_until": None, "last_tenant_id": None},
    )


def _ops_only(actor: Actor, action: Action) -> None:
    if actor.is_tenant:
        raise errors.ValidationError(f"action: {action.value} is an ops action", field="action")


def number_retire(
    *,
    number: str,
    actor: Actor,
    reason: str = "",
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> MutationResult:
    _ops_only(actor, Action.RETIRE)

    def changes(ctx: _Context) -> dict[str, Any]:
        ctx.event_data["reason"] = reason
        return {"quarantine_until": None, "last_tenant_id": None}

    return _run(
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
    _ops_only(actor, Action.REINSTATE)

    def changes(ctx: _Context) -> dict[str, Any]:
        until = ctx.now + timedelta(days=_quarantine_days(ctx.number))
        ctx.event_data.update({"reason": reason, "quarantine_until": until.isoformat()})
        return {"quarantine_until": until}

    return _run(
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


# --- added by the REST issue (4): batch reserve, lease auto-renew, quarantine policies ------

MAX_RESERVE_BATCH = 100
RESERVE_BATCH_ATTEMPTS = 5


class _ShortBatch(Exception):
    def __init__(self, got: int) -> None:
        self.got = got


def _reserve_batch(
    actor: Actor,
    tenant_id: uuid.UUID,
    criteria: Any,
    count: int,
    ttl_seconds: int | None,
    chain_for: Callable[[str], int],
) -> list[dict[str, Any]]:
    from numbering import selectors

    results: list[dict[str, Any]] = []
    tried: set[int] = set()
    while len(results) < count:
        candidates = selectors.available_candidates_for_update(
            tenant_id=tenant_id, criteria=criteria, limit=count - len(results), exclude_ids=tried
        )
        if not candidates:
            raise _ShortBatch(len(results))
        for candidate in sorted(candidates, key=lambda n: (chain_for(n.number), n.number)):
            tried.add(candidate.id)
            try:
                result = number_reserve(
                    number=candidate.number, tenant_id=tenant_id, actor=actor, ttl_seconds=ttl_seconds
                )
            except _LOST_CANDIDATE:
                continue
            results.append(result.to_dict())
    return results


# Refusals after which reserve-by-criteria keeps looking for another candidate.
_LOST_CANDIDATE = (errors.NotAvailable, errors.Conflict, errors.InvalidTransition)


@dataclass
class BatchResult:
    results: list[dict[str, Any]]
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"count": len(self.results), "results": self.results}


def _claim(actor: Actor, idempotency_key: str | None, fingerprint: dict[str, Any]) -> str | None:
    if not idempotency_key:
        return None
    return idempotency.claim(scope=actor.identity, key=idempotency_key, request=fingerprint)


def _store(actor: Actor, idempotency_key: str | None, response: dict[str, Any]) -> dict[str, Any]:
    if not idempotency_key:
        return response
    return json.loads(idempotency.store(scope=actor.identity, key=idempotency_key, response=response))


def number_reserve_matching(
    *,
    actor: Actor,
    count: int,
    tenant_id: uuid.UUID | str | None = None,
    kind: str | None = None,
    issuer: str | None = None,
    prefix: str | None = None,
    pattern: str | None = None,
    vanity_tier: str | None = None,
    vanity: bool | None = None,
    ttl_seconds: int | None = None,
    idempotency_key: str | None = None,
) -> BatchResult:
    """Reserve `count` AVAILABLE numbers matching the criteria in the tenant's entitled
    pools — all of them or none (NOT_AVAILABLE when fewer could be had).

    Lock order, the same as a single number_reserve (ADR 0402): the tenant pool row first,
    then the candidate number rows (FOR UPDATE SKIP LOCKED: rows another reserver holds
    are skipped, so a busy pool does not look empty), then the audit chain heads, taken
    in ascending chain order by reserving the candidates sorted by their chain."""
    from audit.services import chain_for
    from numbering import selectors

    if not isinstance(count, int) or not 1 <= count <= MAX_RESERVE_BATCH:
        raise errors.ValidationError(f"count: must be between 1 and {MAX_RESERVE_BATCH}", field="count")
    if ttl_seconds is not None and ttl_seconds < 0:
        raise errors.ValidationError("ttl_seconds: must not be negative", field="ttl_seconds")
    criteria = selectors.number_criteria_q(
        kind=kind, issuer=issuer, prefix=prefix, pattern=pattern, vanity_tier=vanity_tier, vanity=vanity
    )
    acting = _acting_tenant(actor, tenant_id)
    if acting is None:
        raise errors.ValidationError("tenant_id: required to reserve numbers", field="tenant_id")
    fingerprint = {
        "action": "reserve_matching",
        "tenant_id": str(acting),
        "count": count,
        "kind": kind,
        "issuer": issuer,
        "prefix": prefix,
        "pattern": pattern,
        "vanity_tier": vanity_tier,
        "vanity": vanity,
        "ttl_seconds": ttl_seconds,
    }
    with transaction.atomic(), rls.scope_for(actor):
        stored = _claim(actor, idempotency_key, fingerprint)
        if stored is not None:
            return BatchResult(json.loads(stored)["results"], replayed=True)
        _active_pool(acting, lock=True)
        for attempt in range(RESERVE_BATCH_ATTEMPTS):
            try:
                # A savepoint per attempt: a short attempt rolls back and so releases every
                # row lock it took, letting a competing batch finish instead of both failing.
                with transaction.atomic():
                    results = _reserve_batch(actor, acting, criteria, count, ttl_seconds, chain_for)
                break
            except _ShortBatch as short:
                matching = selectors.number_available_for_tenant(tenant_id=acting).filter(criteria).count()
                if matching < count or attempt == RESERVE_BATCH_ATTEMPTS - 1:
                    raise errors.NotAvailable(
                        f"count: only {short.got} of {count} matching numbers could be reserved; nothing was reserved",
                        field="count",
                    ) from None
                # Enough rows match but others hold them right now: back off (jittered, so two
                # batches that split the last rows between them do not collide again) and retry.
                time.sleep(random.uniform(0.005, 0.03) * (attempt + 1))  # noqa: S311 - jitter, not crypto
        results.sort(key=lambda r: r["number"]["number"])
        response = _store(actor, idempotency_key, {"count": len(results), "results": results})
        return BatchResult(response["results"])


def _own_active(model: Any, object_id: uuid.UUID, actor: Actor, purpose: str, *, lock: bool = False) -> Any:
    """The ACTIVE lease or reservation `object_id` as `actor` may see it (tenants: only their
    own, which RLS enforces too), or NOT_FOUND / INVALID_TRANSITION naming why not."""
    noun = model._meta.model_name  # "lease" / "reservation"
    qs = (model.objects.select_for_update() if lock else model.objects).select_related("number")
    if actor.tenant_id is not None:
        qs = qs.filter(tenant_id=actor.tenant_id)
    row = qs.filter(id=object_id).first()
    if row is None:
        raise errors.NotFound(f"{noun} {object_id} not found", field=f"{noun}_id")
    if row.status != model.Status.ACTIVE:
        raise errors.InvalidTransition(f"{noun} {object_id} is {row.status}; only an ACTIVE {noun} can {purpose}")
    return row


def lease_set_auto_renew(
    *, lease_id: uuid.UUID | str, auto_renew: bool, actor: Actor, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Turn a lease's auto-renewal on or off (audited). Tenants only reach their own leases."""
    lease_uuid = parse_uuid(lease_id, field="lease_id")
    if not isinstance(auto_renew, bool):
        raise errors.ValidationError("auto_renew: must be true or false", field="auto_renew")
    with transaction.atomic(), rls.scope_for(actor):
        # The tenant is part of the fingerprint: two tenants' users with the same subject
        # never see each other's stored responses.
        fingerprint = {
            "action": "lease_auto_renew",
            "lease_id": str(lease_uuid),
            "auto_renew": auto_renew,
            "tenant_id": str(actor.tenant_id),
        }
        stored = _claim(actor, idempotency_key, fingerprint)
        if stored is not None:
            return json.loads(stored)
        lease = _own_active(Lease, lease_uuid, actor, "change auto-renew", lock=True)
        before = lease_snapshot(lease)
        if lease.auto_renew != auto_renew:
            lease.auto_renew = auto_renew
            lease.save(update_fields=["auto_renew"])
        after = lease_snapshot(lease)
        audit_append(
            actor=actor.identity,
            action="lease_auto_renew",
            object_type="number",
            object_id=lease.number.number,
            tenant_id=lease.tenant_id,
            before={"lease": before},
            after={"lease": after},
        )
        return _store(actor, idempotency_key, {"lease": after, "number": lease.number.number})


def quarantine_policy_update(
    *,
    case: str,
    actor: Actor,
    approved_by: str,
    approved_at: datetime | None = None,
    days: int | None = None,
    description: str | None = None,
) -> QuarantinePolicy:
    """Change a cool-off (DESIGN §2.1). Legal approves every change: the approver is required,
    the approval time defaults to now; audited with the approver and the staff user."""
    if actor.is_tenant:
        raise errors.ValidationError("action: quarantine policies are changed by staff only", field="action")
    if not approved_by or not approved_by.strip():
        raise errors.ValidationError("approved_by: who approved the change is required", field="approved_by")
    approved_at = approved_at or timezone.now()
    if approved_at > timezone.now() + timedelta(minutes=5):
        raise errors.ValidationError("approved_at: must not be in the future", field="approved_at")
    if days is not None and not 0 <= days <= 3650:
        raise errors.ValidationError("days: must be between 0 and 3650", field="days")
    with transaction.atomic():
        policy = QuarantinePolicy.objects.select_for_update().filter(case=case).first()
        if policy is None:
            raise errors.NotFound(f"quarantine policy {case!r} not found", field="case")
        before = {
            "days": policy.days,
            "description": policy.description,
            "approved_by": policy.approved_by,
            "approved_at": _iso(policy.approved_at),
        }
        if days is not None:
            policy.days = days
        if description is not None:
            policy.description = description
        policy.approved_by, policy.approved_at = approved_by.strip(), approved_at
        policy.save()
        after = {
            "days": policy.days,
            "description": policy.description,
            "approved_by": policy.approved_by,
            "approved_at": _iso(policy.approved_at),
        }
        audit_append(
            actor=actor.identity,
            action="quarantine_policy.update",
            object_type="quarantine_policy",
            object_id=f"quarantine_policy:{case}",
            before=before,
            after=after,
        )
        return policy


def reservation_cancel(
    *, reservation_id: uuid.UUID | str, actor: Actor, idempotency_key: str | None = None
) -> MutationResult:
    """Cancel an ACTIVE reservation (RESERVED → AVAILABLE through number_release). The
    release is pinned to the number's version as read here, so if the number moved on
    meanwhile the cancel is refused (CONFLICT) instead of releasing something else."""
    res_uuid = parse_uuid(reservation_id, field="reservation_id")
    with transaction.atomic(), rls.scope_for(actor):
        fingerprint = {
            "action": "reservation_cancel",
            "reservation_id": str(res_uuid),
            "tenant_id": str(actor.tenant_id),
        }
        stored = _claim(actor, idempotency_key, fingerprint)
        if stored is not None:
            return MutationResult(**json.loads(stored), replayed=True)
        reservation = _own_active(Reservation, res_uuid, actor, "be cancelled")
        result = number_release(
            number=reservation.number.number,
            actor=actor,
            tenant_id=reservation.tenant_id,
            reason="RESERVATION_CANCELLED",
            expected_version=reservation.number.version,
        )
        return MutationResult(**_store(actor, idempotency_key, result.to_dict()))


def lease_renew(*, lease_id: uuid.UUID | str, actor: Actor, idempotency_key: str | None = None) -> MutationResult:
    """Renew the number of an ACTIVE lease by one term (number_renew), addressed by lease id."""
    lease_uuid = parse_uuid(lease_id, field="lease_id")
    with transaction.atomic(), rls.scope_for(actor):
        fingerprint = {"action": "lease_renew", "lease_id": str(lease_uuid), "tenant_id": str(actor.tenant_id)}
        stored = _claim(actor, idempotency_key, fingerprint)
        if stored is not None:
            return MutationResult(**json.loads(stored), replayed=True)
        lease = _own_active(Lease, lease_uuid, actor, "be renewed")
        result = number_renew(
            number=lease.number.number, actor=actor, tenant_id=lease.tenant_id, expected_version=lease.number.version
        )
        return MutationResult(**_store(actor, idempotency_key, result.to_dict()))
