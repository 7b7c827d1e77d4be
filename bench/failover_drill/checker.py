"""Linearizability checker for the failover drill's histories (issue 14).

Each number is a compare-and-set register over (state, holder, version); an operation is
one of the lifecycle actions the drill's clients run. A history is linearizable when some
total order of its operations, consistent with real time (an operation that completed
before another was invoked comes first), makes every completed operation's outcome what
the model says: an `ok` returns exactly the model's new (state, holder, version), a
`fail` is a definite refusal (the model must refuse it too), an `info` (timeout,
UNAVAILABLE: the outcome is unknown) may have taken effect at any point after it was
invoked, or never.

The search is the WGL algorithm (Wing & Gong, "Testing and verifying concurrent objects",
JPDC 17(1), 1993) with the memoisation of Lowe ("Testing for linearizability", CCPE 29(4),
2017), as Knossos (Kingsbury, Jepsen) and Porcupine (Athalye, 2017) implement it: walk
the history's call/return entries, tentatively linearise a pending call whose step the
model accepts, remember (set of linearised ops, model state) pairs already explored, and
backtrack when a return is reached whose call could not be placed. It is exhaustive: a
"violation" means no order exists. Nondeterminism (an `info` may or may not have applied)
is handled as Porcupine does, by running the search over sets of model states.

Stdlib only: the drill and the tests import it; `python checker.py HISTORY.jsonl` checks
a saved history.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AVAILABLE, RESERVED, ASSIGNED, QUARANTINED = "AVAILABLE", "RESERVED", "ASSIGNED", "QUARANTINED"
State = tuple[str, str | None, int]  # (lifecycle state, holder tenant or None, version)


@dataclass
class Op:
    id: int
    key: str
    f: str  # reserve | assign | release | recall | end_quarantine | read
    tenant: str | None
    invoke: float
    complete: float = math.inf
    outcome: str = "info"  # ok | fail | info
    value: State | None = None  # ok: the (state, holder, version) the server returned
    error: str = ""
    process: str = ""


def transition(f: str, tenant: str | None, state: State) -> State | None:
    """The model: the lifecycle table (numbering/lifecycle.py) restricted to the drill's
    actions; None = refused. Reservations and leases in the drill never expire."""
    lifecycle, holder, version = state
    target: tuple[str, str | None] | None = None
    if f == "reserve" and lifecycle == AVAILABLE:
        target = (RESERVED, tenant)
    elif f == "assign" and (lifecycle == AVAILABLE or (lifecycle == RESERVED and holder == tenant)):
        target = (ASSIGNED, tenant)
    elif f == "release" and lifecycle in (RESERVED, ASSIGNED) and holder == tenant:
        target = (AVAILABLE if lifecycle == RESERVED else QUARANTINED, None)
    elif f == "recall" and lifecycle in (RESERVED, ASSIGNED):
        target = (AVAILABLE if lifecycle == RESERVED else QUARANTINED, None)
    elif f == "end_quarantine" and lifecycle == QUARANTINED:
        target = (AVAILABLE, None)
    if target is None:
        return None
    return (target[0], target[1], version + 1)


def step(states: frozenset[State], op: Op) -> frozenset[State]:
    """Powerset step: every model state the register can be in after `op`; empty = the
    op's observed outcome is impossible from every candidate state."""
    out: set[State] = set()
    for state in states:
        if op.f == "read":
            if op.value == state:
                out.add(state)
            continue
        new = transition(op.f, op.tenant, state)
        if op.outcome == "ok":
            if new is not None and new == op.value:
                out.add(new)
        elif op.outcome == "fail":
            if new is None:
                out.add(state)
        else:  # info: applied, or not
            out.add(state)
            if new is not None:
                out.add(new)
    return frozenset(out)


@dataclass
class _Entry:
    op: Op
    is_call: bool
    time: float
    match: _Entry | None = None
    prev: _Entry | None = None
    next: _Entry | None = None


@dataclass
class KeyResult:
    key: str
    ok: bool
    ops: int
    explored: int
    unknown: bool = False  # the search budget ran out before an answer (Knossos' :unknown)
    final_states: list[State] = field(default_factory=list)
    stuck_at: list[dict[str, Any]] = field(default_factory=list)  # ops never placed (violation)


def check_key(key: str, ops: list[Op], initial: State, *, max_explored: int = 2_000_000) -> KeyResult:
    """WGL search over one register's history."""
    entries: list[_Entry] = []
    for op in ops:
        call = _Entry(op, True, op.invoke)
        ret = _Entry(op, False, op.complete)
        call.match = ret
        entries += [call, ret]
    # Calls before returns at equal times: the more permissive reading of a tie.
    entries.sort(key=lambda e: (e.time, 0 if e.is_call else 1))
    head = _Entry(Op(-1, key, "", None, -math.inf), True, -math.inf)
    prev = head
    for item in entries:
        prev.next, item.prev = item, prev
        prev = item

    def lift(entry: _Entry) -> None:
        assert entry.prev is not None and entry.match is not None
        entry.prev.next = entry.next
        if entry.next is not None:
            entry.next.prev = entry.prev
        match = entry.match
        assert match.prev is not None
        match.prev.next = match.next
        if match.next is not None:
            match.next.prev = match.prev

    def unlift(entry: _Entry) -> None:
        match = entry.match
        assert match is not None and match.prev is not None
        match.prev.next = match
        if match.next is not None:
            match.next.prev = match
        assert entry.prev is not None
        entry.prev.next = entry
        if entry.next is not None:
            entry.next.prev = entry

    index = {op.id: i for i, op in enumerate(ops)}
    states: frozenset[State] = frozenset({initial})
    linearized = 0
    cache: set[tuple[int, frozenset[State]]] = set()
    calls: list[tuple[_Entry, frozenset[State]]] = []
    deepest: tuple[int, list[_Entry]] = (0, [])
    explored = 0
    entry: _Entry | None = head.next
    while head.next is not None:
        explored += 1
        if explored > max_explored:
            return KeyResult(key, False, len(ops), explored, unknown=True)
        assert entry is not None
        if entry.is_call:
            new_states = step(states, entry.op)
            if new_states:
                new_lin = linearized | (1 << index[entry.op.id])
                if (new_lin, new_states) not in cache:
                    cache.add((new_lin, new_states))
                    calls.append((entry, states))
                    states, linearized = new_states, new_lin
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if len(calls) >= deepest[0]:  # remember where the search got stuck, for the report
                pending: list[_Entry] = []
                cursor: _Entry | None = head.next
                while cursor is not None and len(pending) < 6:
                    if cursor.is_call:
                        pending.append(cursor)
                    cursor = cursor.next
                deepest = (len(calls), pending)
            if not calls:
                stuck = [_describe(e.op) for e in deepest[1]]
                return KeyResult(key, False, len(ops), explored, stuck_at=stuck)
            entry, states = calls.pop()
            linearized &= ~(1 << index[entry.op.id])
            unlift(entry)
            entry = entry.next
    return KeyResult(key, True, len(ops), explored, final_states=sorted(states, key=repr))


def _describe(op: Op) -> dict[str, Any]:
    return {
        "id": op.id,
        "f": op.f,
        "tenant": op.tenant,
        "outcome": op.outcome,
        "value": op.value,
        "error": op.error,
        "invoke": round(op.invoke, 4),
        "complete": None if math.isinf(op.complete) else round(op.complete, 4),
    }


# --- histories -------------------------------------------------------------------------------


def load_history(lines: Iterable[str]) -> tuple[list[Op], dict[str, State]]:
    """JSON lines: {"type": "init", "key", "value"} | {"type": "invoke", "id", "key", "f",
    "tenant", "t", "process"} | {"type": "ok"|"fail"|"info", "id", "t", "value"?, "error"?}."""
    ops: dict[int, Op] = {}
    initial: dict[str, State] = {}
    for line in lines:
        if not line.strip():
            continue
        rec = json.loads(line)
        kind = rec["type"]
        if kind == "init":
            initial[rec["key"]] = _state(rec["value"])
        elif kind == "invoke":
            ops[rec["id"]] = Op(
                rec["id"], rec["key"], rec["f"], rec.get("tenant"), rec["t"], process=rec.get("process", "")
            )
        else:
            op = ops[rec["id"]]
            op.outcome = kind
            op.error = rec.get("error", "")
            if kind == "info":
                op.complete = math.inf  # unknown: may take effect any time after invoke
            else:
                op.complete = rec["t"]
                if rec.get("value") is not None:
                    op.value = _state(rec["value"])
    return list(ops.values()), initial


def _state(value: Any) -> State:
    lifecycle, holder, version = value
    return (str(lifecycle), holder or None, int(version))


@dataclass
class Report:
    keys: list[KeyResult]

    @property
    def violations(self) -> list[KeyResult]:
        return [k for k in self.keys if not k.ok and not k.unknown]

    @property
    def unknown(self) -> list[KeyResult]:
        return [k for k in self.keys if k.unknown]

    @property
    def ok(self) -> bool:
        """Proved linearizable: no violation and no key left undecided."""
        return all(k.ok for k in self.keys)


def check_history(ops: list[Op], initial: dict[str, State]) -> Report:
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    results = []
    for key in sorted(by_key):
        if key not in initial:
            raise ValueError(f"history has operations on {key} but no init record")
        results.append(check_key(key, by_key[key], initial[key]))
    return Report(results)


def acknowledged_versions(ops: list[Op]) -> dict[str, dict[int, tuple[str, str | None]]]:
    """number -> {version: (state, holder)} of every acknowledged change."""
    acked: dict[str, dict[int, tuple[str, str | None]]] = defaultdict(dict)
    for op in ops:
        if op.outcome == "ok" and op.f != "read" and op.value is not None:
            acked[op.key][op.value[2]] = (op.value[0], op.value[1])
    return acked


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    ops, initial = load_history(path.read_text().splitlines())
    report = check_history(ops, initial)
    for result in report.keys:
        verdict = "linearizable" if result.ok else ("UNKNOWN (budget)" if result.unknown else "NOT LINEARIZABLE")
        print(f"{result.key}: {verdict} ({result.ops} ops, {result.explored} steps)")
        for item in result.stuck_at:
            print(f"    pending: {item}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
