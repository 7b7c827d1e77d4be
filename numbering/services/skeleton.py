"""The shared skeleton of every lifecycle action (DESIGN §2.1, §2.2).

read → check (lifecycle table) → prepare → changes → CAS (cas.py) → effects → audit,
outbox, idempotency record (core.idempotency.run) → cache refresh after commit, in one
transaction under the actor's RLS scope. The actions in actions.py only say what is
special about them: their checks, their column changes and their side rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from prometheus_client import Counter

from audit.services import audit_append
from core import clock, errors, idempotency, rls
from core.actors import Actor
from core.formats import normalize_number, parse_uuid
from core.outbox import outbox_enqueue
from numbering import anomaly, cas, lease_cache, lifecycle, snapshots
from numbering.lifecycle import Action, NumberFacts, State, Transition
from numbering.models import Lease, Number, Reservation
from pools.models import TenantPool

MAX_CAS_ATTEMPTS = 3

TRANSITIONS = Counter(
    "numbering_lifecycle_transitions_total",
    "Lifecycle actions by result (ok, replayed or the error code)",
    ["action", "result"],
)
CAS_CONFLICTS = Counter(
    "numbering_cas_conflicts_total", "CONFLICT refusals: the caller's expected_version was stale", ["action"]
)


@dataclass
class MutationResult:
    number: dict[str, Any]
    reservation: dict[str, Any] | None = None
    lease: dict[str, Any] | None = None
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "reservation": self.reservation, "lease": self.lease}


@dataclass
class Context:
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


def facts(number: Number, lease: Lease | None, action: Action | None = None) -> NumberFacts:
    return NumberFacts(
        state=State(number.state),
        version=number.version,
        holder=str(number.tenant_id) if number.tenant_id else None,
        reserved_until=number.reserved_until,
        quarantine_until=number.quarantine_until,
        lease_expires_at=lease.expires_at if lease else None,
        # Read only for the transitions it guards (reserve, assign), never for the others.
        contract_status=cas.contract_status(number.id) if _guards_contract(number, action) else None,
    )


def _guards_contract(number: Number, action: Action | None) -> bool:
    if action is None or number.block_id is None:
        return False
    transition = lifecycle.find_transition(action, number.state)
    return transition is not None and lifecycle.Guard.CONTRACT_OPEN in transition.guards


def load(number: str) -> tuple[Number, Lease | None, Reservation | None]:
    row = Number.objects.select_related("issuer").filter(number=number).first()
    if row is None:
        raise errors.NumberNotFound(f"number {number} not found", field="number")
    lease = reservation = None
    if row.state == State.ASSIGNED:
        lease = Lease.objects.filter(number=row, status=Lease.Status.ACTIVE).first()
    elif row.state == State.RESERVED:
        reservation = Reservation.objects.filter(number=row, status=Reservation.Status.ACTIVE).first()
    return row, lease, reservation


def acting_tenant(actor: Actor, tenant_id: uuid.UUID | str | None) -> uuid.UUID | None:
    """Tenants (and services bound to a tenant) always act as that tenant, whatever the
    request says."""
    if actor.acts_for_tenant:
        return actor.tenant_id
    if tenant_id in (None, ""):
        return None
    return parse_uuid(tenant_id, field="tenant_id")


Step = Callable[[Context], Any]


def _run_action(
    *,
    action: Action,
    number: str,
    actor: Actor,
    tenant_id: uuid.UUID | str | None,
    expected_version: int | None,
    idempotency_key: str | None,
    request: dict[str, Any],
    changes: Callable[[Context], dict[str, Any]],
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
    acting = acting_tenant(actor, tenant_id)
    fingerprint = {"action": action.value, "number": canonical_number, "tenant_id": str(acting), **request}
    with transaction.atomic(), rls.scope_for(actor):
        outcome = idempotency.run(
            scope=actor.identity,
            key=idempotency_key,
            request=fingerprint,
            produce=lambda: _mutate(
                action=action,
                canonical_number=canonical_number,
                actor=actor,
                acting=acting,
                expected_version=expected_version,
                changes=changes,
                effects=effects,
                prepare=prepare,
            ).to_dict(),
        )
    return MutationResult(**outcome.response, replayed=outcome.replayed)


def _mutate(
    *,
    action: Action,
    canonical_number: str,
    actor: Actor,
    acting: uuid.UUID | None,
    expected_version: int | None,
    changes: Callable[[Context], dict[str, Any]],
    effects: Step | None,
    prepare: Step | None,
) -> MutationResult:
    """The change itself, inside the caller's transaction and RLS scope."""
    now = clock.now()
    for _attempt in range(MAX_CAS_ATTEMPTS):
        row, lease, reservation = load(canonical_number)
        try:
            transition = lifecycle.check(
                action,
                facts(row, lease, action),
                now=now,
                tenant_id=str(acting) if acting else None,
                expected_version=expected_version,
            )
        except errors.Conflict:
            if acting is not None:  # CONFLICT spikes per tenant feed the anomaly detector
                anomaly.record_conflict(acting)
            raise
        ctx = Context(action, actor, now, row, lease, reservation, acting, transition)
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
    result = result_of(ctx)
    holder = result.number["tenant_id"] or (str(row.tenant_id) if row.tenant_id else None)
    audit_append(
        actor=actor.identity,
        action=action.value,
        object_type="number",
        object_id=canonical_number,
        tenant_id=holder,
        before=snapshots.number_snapshot(row, lease),
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
            # Billing prices vanity codes by tier (issue 17): present only for vanity numbers.
            **({"vanity_tier": row.vanity_tier} if row.vanity else {}),
            **ctx.event_data,
        },
    )
    lease_cache.refresh_after_commit(result.number)
    return result


def run(*, action: Action, **kwargs: Any) -> MutationResult:
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


def result_of(ctx: Context) -> MutationResult:
    number = Number.objects.select_related("issuer").get(id=ctx.number.id)
    lease = Lease.objects.filter(number=number, status=Lease.Status.ACTIVE).first() or ctx.lease
    reservation = ctx.reservation
    if ctx.action in {Action.RESERVE, Action.EXTEND_RESERVATION}:
        reservation = Reservation.objects.filter(number=number, status=Reservation.Status.ACTIVE).first()
    return MutationResult(
        number=snapshots.number_snapshot(number, lease),
        reservation=snapshots.reservation_snapshot(reservation),
        lease=snapshots.lease_snapshot(lease),
    )
