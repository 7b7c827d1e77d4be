"""The rules the actions share: who may take a number (entitlement, quota, tenant status),
how long a number cools off, and how a holder leaves it. Reads and column values only;
the skeleton does the writing.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.db import connection

from core import authz, errors
from core.actors import Actor
from core.sqlbatch import Fragment
from numbering import lifecycle
from numbering.lifecycle import Action, State
from numbering.models import Number, QuarantinePolicy
from numbering.services.skeleton import Context
from pools.models import InventoryPool, Tenant, TenantPool

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
    pool, _, _ = _pool_facts(tenant_id, lock=lock)
    return pool


_POOL_FIELDS = tuple(TenantPool._meta.concrete_fields)
_ENTITLEMENT = TenantPool.inventory_pools.through


def _pool_facts(
    tenant_id: uuid.UUID, *, lock: bool, inventory_pool_id: int | None = None, count_kind: str | None = None
) -> tuple[TenantPool, bool, int | None]:
    """One statement: the tenant's status, its tenant pool (row-locked with `lock`), whether
    the pool is entitled to `inventory_pool_id`, and — only when `count_kind` is given — how
    many numbers of that kind the tenant holds. (pool, entitled, held); refusals name why."""
    sql = (
        f"SELECT t.status, {', '.join(f'tp.{f.column}' for f in _POOL_FIELDS)},"  # noqa: S608 - fixed fragments
        f" %s::bigint IS NULL OR EXISTS (SELECT 1 FROM {_ENTITLEMENT._meta.db_table} e"
        f" JOIN {InventoryPool._meta.db_table} ip ON ip.id = e.inventorypool_id"
        " WHERE e.tenantpool_id = tp.id AND e.inventorypool_id = %s::bigint"
        " AND ip.deactivated_at IS NULL)"  # a deactivated inventory pool entitles no one (ADR 1620)
        f" FROM {Tenant._meta.db_table} t JOIN {TenantPool._meta.db_table} tp ON tp.tenant_id = t.id"
        " WHERE t.id = %s" + (" FOR UPDATE OF tp" if lock else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [inventory_pool_id, inventory_pool_id, tenant_id])
        row = cursor.fetchone()
    if row is None:  # no such tenant, or no tenant pool: say which
        tenant = tenant_of(tenant_id)
        if tenant.status != Tenant.Status.ACTIVE:
            raise errors.TenantNotActive(f"tenant {tenant_id} is {tenant.status}")
        raise errors.NotAvailable(f"tenant {tenant_id} has no tenant pool; nothing can be reserved or assigned")
    status, *pool_values = row[: 1 + len(_POOL_FIELDS)]
    if status != Tenant.Status.ACTIVE:
        raise errors.TenantNotActive(f"tenant {tenant_id} is {status}")
    pool = TenantPool.from_db("default", [f.attname for f in _POOL_FIELDS], pool_values)
    if pool.deactivated_at is not None:  # deactivated, never deleted (ADR 1620)
        raise errors.NotAvailable(
            f"tenant {tenant_id}'s tenant pool is deactivated; nothing can be reserved or assigned"
        )
    entitled = bool(row[1 + len(_POOL_FIELDS)])
    held = None
    if count_kind is not None and entitled:
        # A statement of its own, after the lock: its snapshot must include what the previous
        # holder of the pool lock committed (the same statement's snapshot predates the wait,
        # and concurrent reserves would all squeeze under the quota).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM numbering_number WHERE tenant_id = %s AND kind = %s AND state = ANY(%s)",
                [tenant_id, count_kind, [s.value for s in lifecycle.HELD_STATES]],
            )
            held = int(cursor.fetchone()[0])
    return pool, entitled, held


def tenant_pool(tenant_id: uuid.UUID) -> TenantPool | None:
    """The tenant's pool (or None), whatever the tenant's status, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(f.column for f in _POOL_FIELDS)} FROM {TenantPool._meta.db_table}"  # noqa: S608
            " WHERE tenant_id = %s",
            [tenant_id],
        )
        row = cursor.fetchone()
    return None if row is None else TenantPool.from_db("default", [f.attname for f in _POOL_FIELDS], list(row))


def check_entitlement_and_quota(ctx: Context) -> TenantPool:
    """Entitlement (pool membership) and quota per kind, in one statement. The tenant pool
    row lock serialises concurrent takes by one tenant, so two requests cannot both squeeze
    under the quota."""
    tenant_id = require_tenant(ctx)
    number = ctx.number
    already_held = number.tenant_id == tenant_id and number.state in lifecycle.HELD_STATES
    pool, entitled, held = _pool_facts(
        tenant_id,
        lock=True,
        inventory_pool_id=number.pool_id,
        count_kind=None if already_held else number.kind,
    )
    if not entitled:
        raise errors.NotAvailable(f"number {number.number} is in a pool this tenant is not entitled to")
    if not already_held:
        quota = pool.quota_for(number.kind)
        assert held is not None
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
    with connection.cursor() as cursor:
        # A missing policy must never shorten a cool-off: then the longest there is, or 365.
        cursor.execute(
            f'SELECT COALESCE((SELECT days FROM {QuarantinePolicy._meta.db_table} WHERE "case" = %s),'  # noqa: S608
            f" (SELECT max(days) FROM {QuarantinePolicy._meta.db_table}), 365)",
            [case],
        )
        return int(cursor.fetchone()[0])


def end_lease(ctx: Context, status: str, reason: str) -> list[Fragment]:
    """End the active lease when the CAS wins (a side row of the CAS statement)."""
    lease = ctx.lease
    if lease is None:
        return []
    lease.status, lease.ended_at, lease.end_reason = status, ctx.now, reason or status
    return [
        Fragment(
            "UPDATE numbering_lease SET status = %s, ended_at = %s, end_reason = %s"
            " WHERE id = %s AND EXISTS (SELECT 1 FROM cas)",
            [lease.status, lease.ended_at, lease.end_reason, lease.id],
        )
    ]


def end_reservation(ctx: Context, status: str) -> list[Fragment]:
    """End the active reservation when the CAS wins (a side row of the CAS statement)."""
    reservation = ctx.reservation
    if reservation is None:
        return []
    reservation.status, reservation.ended_at = status, ctx.now
    return [
        Fragment(
            "UPDATE numbering_reservation SET status = %s, ended_at = %s WHERE id = %s AND EXISTS (SELECT 1 FROM cas)",
            [reservation.status, reservation.ended_at, reservation.id],
        )
    ]


def insert_row(instance: Any) -> Fragment:
    """INSERT `instance` (a Reservation or Lease built in Python, id included) when the CAS wins."""
    fields = [f for f in type(instance)._meta.concrete_fields]
    columns = ", ".join(f.column for f in fields)
    values = [f.get_db_prep_save(getattr(instance, f.attname), connection) for f in fields]
    return Fragment(
        f"INSERT INTO {type(instance)._meta.db_table} ({columns})"  # noqa: S608 - model metadata only
        f" SELECT {', '.join(['%s'] * len(fields))} FROM cas",
        values,
    )


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
