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

from django.db import connection
from prometheus_client import Counter

from audit.services import audit_prepare
from core import clock, errors, idempotency, rls
from core.actors import Actor
from core.formats import normalize_number, parse_uuid
from core.outbox import outbox_prepare
from core.sqlbatch import Fragment
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
    # Run once the CAS has won (e.g. schedule an after-commit Redis write).
    on_success: list[Callable[[], None]] = field(default_factory=list)


def facts(number: Number, lease: Lease | None, action: Action | None = None) -> NumberFacts:
    return NumberFacts(
        state=State(number.state),
        version=number.version,
        holder=str(number.tenant_id) if number.tenant_id else None,
        reserved_until=number.reserved_until,
        quarantine_until=number.quarantine_until,
        lease_expires_at=lease.expires_at if lease else None,
        # Read only for the transitions it guards (reserve, assign), never for the others.
        contract_status=_contract_status(number) if _guards_contract(number, action) else None,
    )


def _contract_status(number: Number) -> str | None:
    """Loaded with the number by load() (no extra statement); read when the row came another way."""
    if hasattr(number, "contract_status"):
        return number.contract_status  # type: ignore[no-any-return]
    return cas.contract_status(number.id)


def _guards_contract(number: Number, action: Action | None) -> bool:
    if action is None or number.block_id is None:
        return False
    transition = lifecycle.find_transition(action, number.state)
    return transition is not None and lifecycle.Guard.CONTRACT_OPEN in transition.guards


# The issuer model through the relation: numbering does not import the contracts app.
Issuer: Any = Number._meta.get_field("issuer").related_model
_NUMBER_COLS = ", ".join(f"n.{c}" for c in cas.COLUMNS)
_LEASE_FIELDS = tuple(f for f in Lease._meta.concrete_fields)
_RESERVATION_FIELDS = tuple(f for f in Reservation._meta.concrete_fields)
# One statement: the number, its operator code, its contract's status (ADR 1610) and its
# ACTIVE lease or reservation (the partial unique indexes one_active_lease/reservation_per_number
# make these at most one row).
_LOAD_SQL = (
    f"SELECT {_NUMBER_COLS}, i.code, ({cas.CONTRACT_STATUS_OF_ROW}),"  # noqa: S608 - fixed fragments only
    f" {', '.join(f'l.{f.column}' for f in _LEASE_FIELDS)},"
    f" {', '.join(f'r.{f.column}' for f in _RESERVATION_FIELDS)}"
    f" FROM numbering_number n JOIN {Issuer._meta.db_table} i ON i.id = n.issuer_id"
    " LEFT JOIN numbering_lease l ON l.number_id = n.id AND l.status = 'ACTIVE' AND n.state = 'ASSIGNED'"
    " LEFT JOIN numbering_reservation r ON r.number_id = n.id AND r.status = 'ACTIVE' AND n.state = 'RESERVED'"
    " WHERE n.number = %s"
)


def number_from_row(values: dict[str, Any], operator_code: str) -> Number:
    """A Number built from raw column values (no query), with its issuer's code attached."""
    number = Number.from_db("default", list(cas.ATTNAMES), [values[a] for a in cas.ATTNAMES])
    Number.issuer.field.set_cached_value(
        number, Issuer.from_db("default", ["id", "code"], [number.issuer_id, operator_code])
    )
    return number


def load(number: str) -> tuple[Number, Lease | None, Reservation | None]:
    with connection.cursor() as cursor:
        cursor.execute(_LOAD_SQL, [number])
        values = cursor.fetchone()
    if values is None:
        raise errors.NumberNotFound(f"number {number} not found", field="number")
    n_cols, l_cols = len(cas.ATTNAMES), len(_LEASE_FIELDS)
    row = number_from_row(dict(zip(cas.ATTNAMES, values[:n_cols], strict=True)), values[n_cols])
    row.contract_status = values[n_cols + 1]  # type: ignore[attr-defined]  # read by facts()
    lease_values = values[n_cols + 2 : n_cols + 2 + l_cols]
    reservation_values = values[n_cols + 2 + l_cols :]
    lease = reservation = None
    if lease_values[0] is not None:
        lease = Lease.from_db("default", [f.attname for f in _LEASE_FIELDS], list(lease_values))
    if reservation_values[0] is not None:
        reservation = Reservation.from_db("default", [f.attname for f in _RESERVATION_FIELDS], list(reservation_values))
    return row, lease, reservation


def _hidden_facts(number: str, acting: uuid.UUID | None) -> NumberFacts | None:
    """What a tenant scope may know of a number it hides (another tenant's, or in no
    tenant's hands and not AVAILABLE): its state and version, through a SECURITY DEFINER
    function that returns nothing else (numbering 0013, ADR 1352). With no holder in the
    facts, the check refuses a holder-guarded action as WRONG_TENANT before it looks at
    anything else. None: no such number, or nobody acting for a tenant."""
    if acting is None:
        return None
    hidden = cas.hidden_number_facts(number)
    if hidden is None:
        return None
    state, version = hidden
    return NumberFacts(state=State(state), version=version, holder=None)


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
    effects: Callable[[Context], list[Fragment]] | None = None,
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
    deferred: list[Fragment] = []
    with rls.scoped_transaction(actor):
        outcome = idempotency.run(
            scope=actor.identity,
            key=idempotency_key,
            request=fingerprint,
            deferred=deferred,
            produce=lambda: _mutate(
                action=action,
                canonical_number=canonical_number,
                actor=actor,
                acting=acting,
                expected_version=expected_version,
                changes=changes,
                effects=effects,
                prepare=prepare,
                deferred=deferred,
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
    effects: Callable[[Context], list[Fragment]] | None,
    prepare: Step | None,
    deferred: list[Fragment],
) -> MutationResult:
    """The change itself, inside the caller's transaction and RLS scope. The statements
    (ADR 1100): load (1), the prepare step's reads, the CAS with the side rows (1), the
    audit chain head lock (1); the audit event, head update and outbox row + NOTIFY are
    appended to `deferred`, which idempotency.run sends with the stored response (1)."""
    now = clock.now()
    for _attempt in range(MAX_CAS_ATTEMPTS):
        try:
            row, lease, reservation = load(canonical_number)
            number_facts = facts(row, lease, action)
        except errors.NumberNotFound:
            # A tenant's own request gets NOT_FOUND (REST: BOLA 404); a service acting for a
            # tenant gets the refusal the check gives from what the hidden row may tell.
            hidden = None if actor.is_tenant else _hidden_facts(canonical_number, acting)
            if hidden is None:
                raise
            row, lease, reservation, number_facts = None, None, None, hidden
        try:
            transition = lifecycle.check(
                action,
                number_facts,
                now=now,
                tenant_id=str(acting) if acting else None,
                expected_version=expected_version,
            )
        except errors.Conflict:
            if acting is not None:  # CONFLICT spikes per tenant feed the anomaly detector
                anomaly.record_conflict(acting)
            raise
        if row is None:
            # No tenant action passes the check on a number it cannot see; if one ever did,
            # it is refused here, never performed on a row this scope cannot update.
            raise errors.WrongTenant(f"the number is not available to this tenant; {action.value} refused")
        ctx = Context(action, actor, now, row, lease, reservation, acting, transition)
        if prepare:
            prepare(ctx)
        column_changes = changes(ctx)
        updated = cas.compare_and_set(
            number_id=row.id,
            transition=transition,
            changes=column_changes,
            now=now,
            tenant_id=acting,
            # The version we read, always (the caller's expected_version, when given, was
            # checked equal to it): a row that changed since, even back to the same state
            # (A→B→A, a renewal), loses the CAS and is read again, so the audit event's
            # `before` is exactly the row this change replaced (issue 14's audit notes).
            expected_version=row.version,
            side_rows=effects(ctx) if effects else (),
        )
        if updated is not None:
            break
    else:
        raise errors.NotAvailable(f"number {canonical_number} kept changing while we tried; try again")
    for callback in ctx.on_success:
        callback()
    result = result_of(ctx, number_from_row(updated, row.issuer.code))
    holder = result.number["tenant_id"] or (str(row.tenant_id) if row.tenant_id else None)
    _event, audit_writes = audit_prepare(
        actor=actor.identity,
        action=action.value,
        object_type="number",
        object_id=canonical_number,
        tenant_id=holder,
        before=snapshots.number_snapshot(row, lease),
        after=result.to_dict(),
        occurred_at=now,
    )
    _outbox_event, outbox_write = outbox_prepare(
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
    deferred.extend([*audit_writes, outbox_write])
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


def result_of(ctx: Context, number: Number) -> MutationResult:
    """The result from what the action already holds: the row the CAS returned and the
    lease/reservation as its side rows left them (no re-read)."""
    return MutationResult(
        number=snapshots.number_snapshot(number, ctx.lease),
        reservation=snapshots.reservation_snapshot(ctx.reservation),
        lease=snapshots.lease_snapshot(ctx.lease),
    )
