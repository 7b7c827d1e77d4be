"""The number lifecycle (DESIGN §2.1) as data, plus pure checks. No I/O here.

Services and tests both read TRANSITIONS: a new state or action is one more row. A
(state, action) pair that has no row is refused with INVALID_TRANSITION.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from core import errors


class State(StrEnum):
    AVAILABLE = "AVAILABLE"
    RESERVED = "RESERVED"
    ASSIGNED = "ASSIGNED"
    QUARANTINED = "QUARANTINED"
    RETIRED = "RETIRED"


class Action(StrEnum):
    RESERVE = "reserve"
    EXTEND_RESERVATION = "extend_reservation"
    ASSIGN = "assign"
    RELEASE = "release"
    EXPIRE_RESERVATION = "expire_reservation"
    RENEW = "renew"
    EXPIRE_LEASE = "expire_lease"
    RECALL = "recall"
    END_QUARANTINE = "end_quarantine"
    RETIRE = "retire"
    REINSTATE = "reinstate"


class Guard(StrEnum):
    """Extra conditions a transition needs besides the source state (SQL in cas.py)."""

    HOLDER = "holder"  # the acting tenant holds the number (skipped for ops/system)
    RESERVATION_LIVE = "reservation_live"  # reserved_until > now
    RESERVATION_DUE = "reservation_due"  # reserved_until <= now
    LEASE_DUE = "lease_due"  # the active lease's expires_at <= now
    QUARANTINE_DUE = "quarantine_due"  # quarantine_until <= now
    # The number's contract (block → contract) is neither SUSPENDED nor TERMINATED; a number
    # with no contract passes. Checked in the CAS under a share lock of the contract row, so
    # a take can never slip past a suspension that committed first (ADR 1610).
    CONTRACT_OPEN = "contract_open"


# Contract statuses (contracts.Contract.Status) under which a number is not handed out.
CLOSED_CONTRACT_STATUSES = ("SUSPENDED", "TERMINATED")


@dataclass(frozen=True)
class Transition:
    action: Action
    source: State
    target: State
    event: str  # outbox event type (DESIGN §4)
    guards: frozenset[Guard] = frozenset()


_T = Transition
_OPEN = Guard.CONTRACT_OPEN
TRANSITIONS: tuple[Transition, ...] = (
    _T(Action.RESERVE, State.AVAILABLE, State.RESERVED, "numbering.number.reserved.v1", frozenset({_OPEN})),
    _T(
        Action.EXTEND_RESERVATION,
        State.RESERVED,
        State.RESERVED,
        "numbering.number.reserved.v1",
        frozenset({Guard.HOLDER, Guard.RESERVATION_LIVE}),
    ),
    _T(
        Action.ASSIGN,
        State.RESERVED,
        State.ASSIGNED,
        "numbering.number.assigned.v1",
        frozenset({Guard.HOLDER, Guard.RESERVATION_LIVE, _OPEN}),
    ),
    _T(Action.ASSIGN, State.AVAILABLE, State.ASSIGNED, "numbering.number.assigned.v1", frozenset({_OPEN})),
    _T(Action.RELEASE, State.RESERVED, State.AVAILABLE, "numbering.number.released.v1", frozenset({Guard.HOLDER})),
    _T(Action.RELEASE, State.ASSIGNED, State.QUARANTINED, "numbering.number.released.v1", frozenset({Guard.HOLDER})),
    _T(
        Action.EXPIRE_RESERVATION,
        State.RESERVED,
        State.AVAILABLE,
        "numbering.number.available.v1",
        frozenset({Guard.RESERVATION_DUE}),
    ),
    _T(Action.RENEW, State.ASSIGNED, State.ASSIGNED, "numbering.lease.renewed.v1", frozenset({Guard.HOLDER})),
    _T(
        Action.EXPIRE_LEASE,
        State.ASSIGNED,
        State.QUARANTINED,
        "numbering.lease.expired.v1",
        frozenset({Guard.LEASE_DUE}),
    ),
    _T(Action.RECALL, State.RESERVED, State.AVAILABLE, "numbering.number.recalled.v1"),
    _T(Action.RECALL, State.ASSIGNED, State.QUARANTINED, "numbering.number.recalled.v1"),
    _T(
        Action.END_QUARANTINE,
        State.QUARANTINED,
        State.AVAILABLE,
        "numbering.number.available.v1",
        frozenset({Guard.QUARANTINE_DUE}),
    ),
    _T(Action.RETIRE, State.AVAILABLE, State.RETIRED, "numbering.number.retired.v1"),
    _T(Action.RETIRE, State.QUARANTINED, State.RETIRED, "numbering.number.retired.v1"),
    _T(Action.REINSTATE, State.RETIRED, State.QUARANTINED, "numbering.number.quarantined.v1"),
)

_BY_KEY: dict[tuple[Action, State], Transition] = {(t.action, t.source): t for t in TRANSITIONS}
assert len(_BY_KEY) == len(TRANSITIONS), "one row per (action, source state)"


def transitions_for(action: Action) -> tuple[Transition, ...]:
    return tuple(t for t in TRANSITIONS if t.action is action)


def find_transition(action: Action, source: State | str) -> Transition | None:
    return _BY_KEY.get((action, State(source)))


def is_allowed(action: Action, source: State | str) -> bool:
    return (action, State(source)) in _BY_KEY


def actions_from(source: State | str) -> frozenset[Action]:
    """Every action the table has a row for from `source` (guards aside): what a UI may offer."""
    state = State(source)
    return frozenset(t.action for t in TRANSITIONS if t.source is state)


def invalid_pairs() -> list[tuple[State, Action]]:
    """Every (state, action) pair the table does not allow: what tests enumerate."""
    return [(s, a) for s in State for a in Action if (a, s) not in _BY_KEY]


# States in which a tenant holds a number (and counts against its quota).
HELD_STATES = frozenset({State.RESERVED, State.ASSIGNED})

MAX_RESERVATION_SECONDS = 24 * 3600


@dataclass(frozen=True)
class NumberFacts:
    """What the pure checks need to know about a number (read by the service)."""

    state: State
    version: int
    holder: str | None  # tenant id as text
    reserved_until: datetime | None = None
    quarantine_until: datetime | None = None
    lease_expires_at: datetime | None = None
    contract_status: str | None = None  # the status of the number's contract, if it has one


def check(
    action: Action,
    facts: NumberFacts,
    *,
    now: datetime,
    tenant_id: str | None = None,
    expected_version: int | None = None,
) -> Transition:
    """Return the transition `action` takes from `facts`, or raise the refusal's error.

    `tenant_id` is the tenant acting (or acted for); None means ops/system, who may act
    on any holder's number.
    """
    if expected_version is not None and expected_version != facts.version:
        raise errors.Conflict(
            f"expected_version {expected_version} does not match the current version {facts.version}",
            field="expected_version",
        )
    transition = find_transition(action, facts.state)
    if transition is None:
        allowed = ", ".join(t.source.value for t in transitions_for(action))
        raise errors.InvalidTransition(
            f"{action.value} is not allowed from {facts.state.value} (allowed from: {allowed})"
        )
    # In declaration order, the holder first: a number held by another tenant is refused as
    # such whatever else is true of it (and the order never depends on the hash seed).
    for guard in (g for g in Guard if g in transition.guards):
        if guard is Guard.HOLDER and tenant_id is not None and facts.holder != tenant_id:
            raise errors.WrongTenant(f"the number is held by another tenant; {action.value} refused")
        if guard is Guard.RESERVATION_LIVE and (facts.reserved_until is None or facts.reserved_until <= now):
            raise errors.ReservationExpired(f"the reservation expired at {_iso(facts.reserved_until)}")
        if guard is Guard.RESERVATION_DUE and facts.reserved_until is not None and facts.reserved_until > now:
            raise errors.InvalidTransition(f"the reservation runs until {_iso(facts.reserved_until)}")
        if guard is Guard.QUARANTINE_DUE and facts.quarantine_until is not None and facts.quarantine_until > now:
            raise errors.InvalidTransition(
                f"quarantine ends at {_iso(facts.quarantine_until)}; it is never ended early"
            )
        if guard is Guard.CONTRACT_OPEN and facts.contract_status == "SUSPENDED":
            raise errors.ContractSuspended(f"the number's contract is suspended; {action.value} refused")
        if guard is Guard.CONTRACT_OPEN and facts.contract_status == "TERMINATED":
            raise errors.ContractTerminated(f"the number's contract is terminated; {action.value} refused")
        if guard is Guard.LEASE_DUE and (facts.lease_expires_at is None or facts.lease_expires_at > now):
            raise errors.InvalidTransition(f"the lease runs until {_iso(facts.lease_expires_at)}")
    return transition


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else "(none)"
