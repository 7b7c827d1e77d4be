"""Writes to tenants and pools (the tenant mirror's status, pool watermark levels)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from prometheus_client import Counter, Gauge

from audit.services import audit_append, audited_save
from core import clock, errors, refdata
from core.actors import Actor
from core.authz import require_platform
from core.outbox import outbox_enqueue
from core.rls import rls_scope
from numbering.lifecycle import State
from numbering.models import Number
from pools.models import InventoryPool, PoolWatermarkState, Tenant, TenantPool

log = logging.getLogger(__name__)

# `kind` lets alerts single out short codes (NumberingShortCodeScarcityCritical).
POOL_AVAILABLE = Gauge("numbering_pool_available_numbers", "AVAILABLE numbers per inventory pool", ["pool", "kind"])
POOL_LEVEL = Gauge(
    "numbering_pool_watermark_level",
    "Pool availability level: 0 OK, 1 LOW, 2 CRITICAL, 3 EXHAUSTED",
    ["pool", "kind"],
)
POOL_CROSSINGS = Counter("numbering_pool_exhaustion_events_total", "Watermark crossings published", ["level"])

LEVEL_RANK = {"OK": 0, "LOW": 1, "CRITICAL": 2, "EXHAUSTED": 3}
POOL_EXHAUSTION_EVENT = "numbering.pool.exhaustion.v1"

# A tenant never comes back from DELETED through an event (only ops may undo that).
_ALLOWED_STATUS_CHANGES = {
    (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED),
    (Tenant.Status.ACTIVE, Tenant.Status.DELETED),
    (Tenant.Status.SUSPENDED, Tenant.Status.DELETED),
}


def tenant_set_status(*, tenant_id: uuid.UUID | str, status: str, actor: Actor, reason: str = "") -> bool:
    """Mark the tenant SUSPENDED or DELETED (audited). Returns False when nothing changed
    (already in that status, or the change is not allowed, e.g. DELETED → SUSPENDED)."""
    if status not in {Tenant.Status.SUSPENDED, Tenant.Status.DELETED}:
        raise errors.ValidationError(f"status: must be SUSPENDED or DELETED, got {status!r}", field="status")
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(id=tenant_id).first()
        if tenant is None:
            raise errors.TenantNotFound(f"tenant {tenant_id} not found", field="tenant_id")
        previous = tenant.status
        if (previous, status) not in _ALLOWED_STATUS_CHANGES:
            return False
        tenant.status = status
        tenant.save(update_fields=["status", "updated_at"])
        audit_append(
            actor=actor.identity,
            action=f"tenant_{status.lower()}",
            object_type="tenant",
            object_id=str(tenant.id),
            tenant_id=tenant.id,
            before={"status": previous},
            after={"status": status, "reason": reason},
        )
        outbox_enqueue(
            event_type=refdata.event_type("tenant", refdata.DEACTIVATED),
            aggregate_id=f"tenant:{tenant.id}",
            tenant_id=tenant.id,
            data={
                "object_type": "tenant",
                "object_id": str(tenant.id),
                "actor": actor.identity,
                "changed": ["status"],
                "before": {"status": previous},
                "after": {"status": status, "reason": reason},
            },
        )
    log.info("tenant %s marked %s (was %s): %s", tenant_id, status, previous, reason)
    return True


def watermark_level(pool: InventoryPool, available: int) -> str:
    if available == 0:
        return "EXHAUSTED"
    if available < pool.critical_watermark:
        return "CRITICAL"
    if available < pool.low_watermark:
        return "LOW"
    return "OK"


@dataclass
class WatermarkResult:
    pools: int
    crossings: list[dict[str, Any]]


def pool_watermarks_check() -> WatermarkResult:
    """Set the availability gauges; publish numbering.pool.exhaustion.v1 when a pool's level
    changes (once per crossing: the level is stored, and the row lock makes two concurrent
    runs agree on who saw the change)."""
    now = clock.now()
    crossings: list[dict[str, Any]] = []
    pools = list(InventoryPool.objects.order_by("code"))
    with transaction.atomic(), rls_scope(platform=True):
        counts = dict(
            Number.objects.filter(pool__isnull=False)
            .values("pool_id")
            .annotate(n=Count("id", filter=Q(state=State.AVAILABLE)))
            .values_list("pool_id", "n")
        )
    for pool in pools:
        available = int(counts.get(pool.id, 0))
        level = watermark_level(pool, available)
        POOL_AVAILABLE.labels(pool.code, pool.kind).set(available)
        POOL_LEVEL.labels(pool.code, pool.kind).set(LEVEL_RANK[level])
        with transaction.atomic():
            PoolWatermarkState.objects.get_or_create(pool=pool)
            state = PoolWatermarkState.objects.select_for_update().get(pool=pool)
            previous = state.level
            state.available, state.checked_at = available, now
            if previous != level:
                state.level, state.changed_at = level, now
                data = {
                    "pool": pool.code,
                    "kind": pool.kind,
                    "level": level,
                    "previous_level": previous,
                    "available": available,
                    "low_watermark": pool.low_watermark,
                    "critical_watermark": pool.critical_watermark,
                }
                outbox_enqueue(event_type=POOL_EXHAUSTION_EVENT, aggregate_id=f"pool:{pool.code}", data=data)
                POOL_CROSSINGS.labels(level).inc()
                crossings.append(data)
                log.warning("pool %s crossed from %s to %s (%d available)", pool.code, previous, level, available)
            state.save()
    return WatermarkResult(pools=len(pools), crossings=crossings)


# --- reference data written in the admin (issue 13 item 3, ADR 1351) ---------------------------


# Status changes a staff user (REST or admin) may make; DELETED is the tenant registry's
# (tenant.deleted.v1, which also recalls the tenant's numbers) and is final.
TENANT_STAFF_STATUS_CHANGES = {
    (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED),
    (Tenant.Status.SUSPENDED, Tenant.Status.ACTIVE),
}


def tenant_status_problem(before: str | None, after: str) -> str | None:
    if before is None:
        ok = after in {Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED}
        return None if ok else f"status: a new tenant starts ACTIVE or SUSPENDED, not {after}"
    if before == after or (before, after) in TENANT_STAFF_STATUS_CHANGES:
        return None
    if before == Tenant.Status.DELETED:
        return "status: the tenant is DELETED (by the tenant registry); it is kept as it was"
    return f"status: a tenant cannot go from {before} to {after} here (DELETED comes from the tenant registry)"


def tenant_save(tenant: Tenant, *, actor: Actor, save: Any) -> None:
    require_platform(actor, "tenant_save")

    def check(before: dict[str, Any] | None, row: Tenant) -> None:
        problem = tenant_status_problem(before["status"] if before else None, row.status)
        if problem:
            raise errors.InvalidTransition(problem, field="status")

    audited_save(
        tenant,
        actor=actor.identity,
        object_type="tenant",
        object_id=lambda t: str(t.pk),
        save=save,
        check=check,
        tenant_id=lambda t: t.pk,
    )


def inventory_pool_save(pool: InventoryPool, *, actor: Actor, save: Any) -> None:
    require_platform(actor, "inventory_pool_save")
    audited_save(pool, actor=actor.identity, object_type="inventory_pool", object_id=lambda p: p.code, save=save)


def tenant_pool_save(tenant_pool: TenantPool, *, actor: Actor, save: Any) -> None:
    require_platform(actor, "tenant_pool_save")
    audited_save(
        tenant_pool,
        actor=actor.identity,
        object_type="tenant_pool",
        object_id=lambda p: str(p.tenant_id),
        save=save,
        tenant_id=lambda p: p.tenant_id,
    )


# --- reference data over REST (issue 16, ADR 1620): the same audited saves ---------------------
TENANT_FIELDS = ("id", "name", "registration_no", "segment", "status")
INVENTORY_POOL_FIELDS = (
    "code",
    "name",
    "kind",
    "vanity",
    "government_reserved",
    "low_watermark",
    "critical_watermark",
    "description",
)
TENANT_POOL_FIELDS = (
    "tenant",
    "inventory_pools",
    "quota_msisdn",
    "quota_short_code",
    "default_lease_days",
    "auto_renew_default",
    "reservation_ttl_seconds",
)


def tenant_write(*, data: dict[str, Any], actor: Actor, tenant: Tenant | None = None) -> Tenant:
    """Create or change a tenant. A tenant is deactivated by its status (SUSPENDED: it can
    neither reserve nor assign); DELETED comes only from the tenant registry's event."""
    if tenant is not None and "id" in data and str(data["id"]) != str(tenant.pk):
        raise errors.ValidationError("id: a tenant's id cannot change", field="id")
    return refdata.write(tenant or Tenant(), data, allowed=TENANT_FIELDS, actor=actor, save_service=tenant_save)


def tenant_deactivate(*, tenant: Tenant, actor: Actor) -> Tenant:
    if tenant.status != Tenant.Status.ACTIVE:
        return tenant  # already SUSPENDED or DELETED: nothing to do
    return refdata.write(
        tenant, {"status": Tenant.Status.SUSPENDED}, allowed=TENANT_FIELDS, actor=actor, save_service=tenant_save
    )


def inventory_pool_write(*, data: dict[str, Any], actor: Actor, pool: InventoryPool | None = None) -> InventoryPool:
    if pool is not None and "kind" in data and data["kind"] != pool.kind and pool.numbers.exists():
        raise errors.ValidationError(f"kind: pool {pool.code} holds numbers; its kind cannot change", field="kind")
    return refdata.write(
        pool or InventoryPool(), data, allowed=INVENTORY_POOL_FIELDS, actor=actor, save_service=inventory_pool_save
    )


def inventory_pool_deactivate(*, pool: InventoryPool, actor: Actor) -> InventoryPool:
    """A deactivated inventory pool is drawn from by no tenant (its numbers stay held)."""
    return refdata.deactivate(pool, actor=actor, save_service=inventory_pool_save)


def tenant_pool_write(*, data: dict[str, Any], actor: Actor, tenant_pool: TenantPool | None = None) -> TenantPool:
    if tenant_pool is not None and "tenant" in data and data["tenant"].pk != tenant_pool.tenant_id:
        raise errors.ValidationError("tenant: a tenant pool's tenant cannot change", field="tenant")
    inactive = [p.code for p in data.get("inventory_pools", []) if p.deactivated_at is not None]
    if inactive:
        raise errors.ValidationError(
            f"inventory_pools: {', '.join(inactive)} deactivated; entitle only active pools", field="inventory_pools"
        )
    return refdata.write(
        tenant_pool or TenantPool(),
        data,
        allowed=TENANT_POOL_FIELDS,
        actor=actor,
        save_service=tenant_pool_save,
        relations=("inventory_pools",),
    )


def tenant_pool_deactivate(*, tenant_pool: TenantPool, actor: Actor) -> TenantPool:
    """A deactivated tenant pool cannot be reserved or assigned from (numbering rules)."""
    return refdata.deactivate(tenant_pool, actor=actor, save_service=tenant_pool_save)


def tenant_registry_upsert(*, tenant_id: uuid.UUID, data: dict[str, Any], actor: Actor) -> str:
    """The tenant registry's tenant.created / tenant.updated (issue 16, ADR 1621): create the
    tenant under the registry's id, or change it, through tenant_write (audited, published,
    the same status rules). An update of a tenant we do not know creates it when it carries
    every field a new tenant needs. Returns created / updated / unchanged / unknown_tenant."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(id=tenant_id).first()
        if tenant is None:
            if not {"name", "registration_no", "segment"} <= set(data):
                return "unknown_tenant"
            tenant_write(data={"id": tenant_id, **data}, actor=actor)
            return "created"
        before = (tenant.name, tenant.registration_no, tenant.segment, tenant.status)
        tenant = tenant_write(data=data, actor=actor, tenant=tenant)
        after = (tenant.name, tenant.registration_no, tenant.segment, tenant.status)
        return "unchanged" if before == after else "updated"
