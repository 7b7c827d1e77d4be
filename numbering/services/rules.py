"""The rules the actions share: who may take a number (entitlement, quota, tenant status),
how long a number cools off, and how a holder leaves it. Reads and column values only;
the skeleton does the writing.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from core import authz, errors
from core.actors import Actor
from numbering import lifecycle
from numbering.lifecycle import Action, State
from numbering.models import Number, QuarantinePolicy
from numbering.services.skeleton import Context
from pools.models import Tenant, TenantPool

MAX_LEASE_DAYS = 3650

# Recall reasons that mean a compliance action (suspension, deletion, fraud): 365-day cool-off.
COMPLIANCE_REASONS = frozenset(
    {"COMPLIANCE_SUSPENSION", "COMPLIANCE_DELETION", "TENANT_SUSPENDED", "TENANT_DELETED", "FRAUD"}
)
ASSIGNED_IN_ERROR = "ASSIGNED_IN_ERROR"
MAX_REASON_LENGTH = 64  # Lease.end_reason; REST's serializer says the same


def check_reason(reason: str, actor: Actor) -> None:
    """A reason fits its column (so gRPC gets INVALID_ARGUMENT, not a DataError), and the
    compliance reasons come only from the platform (ASSIGNED_IN_ERROR from a tenant is
    already ignored by quarantine_days):
    a tenant may not choose the 365-day compliance quarantine (issue 13 items 8, 9)."""
    if len(reason) > MAX_REASON_LENGTH:
        raise errors.ValidationError(
            f"reason: at most {MAX_REASON_LENGTH} characters ({len(reason)} given)", field="reason"
        )
    if actor.acts_for_tenant and reason.strip().upper() in COMPLIANCE_REASONS:
        raise errors.ValidationError(
            f"reason: {reason!r} is a compliance/ops reason; only compliance or ops may give it", field="reason"
        )


def check_lease_term(actor: Actor, lease_days: int | None, pool: TenantPool) -> None:
    """The term comes from the pool: whoever acts for a tenant may ask for a shorter lease,
    never a longer one than the pool's default_lease_days (issue 13 item 8)."""
    if lease_days and actor.acts_for_tenant and lease_days > pool.default_lease_days:
        raise errors.ValidationError(
            f"lease_days: at most the pool's term of {pool.default_lease_days} days ({lease_days} asked)",
            field="lease_days",
        )


def tenant_of(tenant_id: uuid.UUID) -> Tenant:
    tenant = Tenant.objects.filter(id=tenant_id).first()
    if tenant is None:
        raise errors.TenantNotFound(f"tenant {tenant_id} not found", field="tenant_id")
    return tenant


def require_tenant(ctx: Context) -> uuid.UUID:
    if ctx.tenant_id is None:
        raise errors.ValidationError(f"tenant_id: required to {ctx.action.value} a number", field="tenant_id")
    return ctx.tenant_id


def active_pool(tenant_id: uuid.UUID, *, lock: bool) -> TenantPool:
    tenant = tenant_of(tenant_id)
    if tenant.status != Tenant.Status.ACTIVE:
        raise errors.TenantNotActive(f"tenant {tenant_id} is {tenant.status}")
    qs = TenantPool.objects.select_for_update() if lock else TenantPool.objects
    pool = qs.filter(tenant_id=tenant_id).first()
    if pool is None:
        raise errors.NotAvailable(f"tenant {tenant_id} has no tenant pool; nothing can be reserved or assigned")
    if pool.deactivated_at is not None:  # deactivated, never deleted (ADR 1620)
        raise errors.NotAvailable(
            f"tenant {tenant_id}'s tenant pool is deactivated; nothing can be reserved or assigned"
        )
    return pool


def check_entitlement_and_quota(ctx: Context) -> TenantPool:
    """Entitlement (pool membership) and quota per kind. The tenant pool row lock
    serialises concurrent takes by one tenant, so two requests cannot both squeeze
    under the quota."""
    tenant_id = require_tenant(ctx)
    pool = active_pool(tenant_id, lock=True)
    number = ctx.number
    if (
        number.pool_id is not None
        and not pool.inventory_pools.filter(id=number.pool_id, deactivated_at__isnull=True).exists()
    ):
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


def quarantine_days(number: Number, *, reason: str = "", compliance: bool = False, by_ops: bool = False) -> int:
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


def end_lease(ctx: Context, status: str, reason: str) -> None:
    if ctx.lease is not None:
        ctx.lease.status, ctx.lease.ended_at, ctx.lease.end_reason = status, ctx.now, reason or status
        ctx.lease.save(update_fields=["status", "ended_at", "end_reason"])


def end_reservation(ctx: Context, status: str) -> None:
    if ctx.reservation is not None:
        ctx.reservation.status, ctx.reservation.ended_at = status, ctx.now
        ctx.reservation.save(update_fields=["status", "ended_at"])


def leave_holder(ctx: Context, days: int | None = None) -> dict[str, Any]:
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


def ttl(ttl_seconds: int | None, pool: TenantPool | None) -> int:
    ttl = ttl_seconds or (pool.reservation_ttl_seconds if pool else 900)
    if not 1 <= ttl <= lifecycle.MAX_RESERVATION_SECONDS:
        raise errors.ValidationError(
            f"ttl_seconds: must be between 1 and {lifecycle.MAX_RESERVATION_SECONDS} (24 h), got {ttl}",
            field="ttl_seconds",
        )
    return ttl


def ops_only(actor: Actor, action: Action) -> None:
    authz.require_platform(actor, action.value)
