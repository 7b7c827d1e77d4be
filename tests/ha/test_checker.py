"""The failover drill's linearizability checker must fail on the anomalies it exists for
(lost acknowledged write, double assignment, stale refusal) and pass valid concurrent
histories, including ones whose unknown outcomes did or did not take effect."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "failover_drill" / "checker.py"
_spec = importlib.util.spec_from_file_location("drill_checker", _PATH)
assert _spec and _spec.loader
checker = importlib.util.module_from_spec(_spec)
sys.modules["drill_checker"] = checker
_spec.loader.exec_module(checker)

N = "+93790000001"
A, B = "tenant-a", "tenant-b"
FREE = ("AVAILABLE", None, 1)


class H:
    """A tiny history builder: times are explicit so overlaps are deliberate."""

    def __init__(self) -> None:
        self.ops: list[Any] = []

    def op(self, f: str, tenant: str | None, start: float, end: float | None, outcome: str, value: Any = None) -> H:
        self.ops.append(
            checker.Op(
                len(self.ops),
                N,
                f,
                tenant,
                start,
                math.inf if end is None else end,
                outcome,
                tuple(value) if value else None,
            )
        )
        return self

    def check(self, initial: Any = FREE) -> Any:
        return checker.check_history(self.ops, {N: initial})


def test_sequential_lifecycle_is_linearizable() -> None:
    h = (
        H()
        .op("reserve", A, 0, 1, "ok", ("RESERVED", A, 2))
        .op("assign", B, 2, 3, "fail")  # held by A: refused
        .op("assign", A, 4, 5, "ok", ("ASSIGNED", A, 3))
        .op("release", A, 6, 7, "ok", ("QUARANTINED", None, 4))
        .op("end_quarantine", None, 8, 9, "ok", ("AVAILABLE", None, 5))
        .op("read", None, 10, 11, "ok", ("AVAILABLE", None, 5))
    )
    report = h.check()
    assert report.ok
    assert report.keys[0].final_states == [("AVAILABLE", None, 5)]


def test_concurrent_reserves_one_winner_is_linearizable() -> None:
    h = (
        H()
        .op("reserve", A, 0, 10, "fail")
        .op("reserve", B, 1, 9, "ok", ("RESERVED", B, 2))  # B wins although A was invoked first
        .op("read", None, 11, 12, "ok", ("RESERVED", B, 2))
    )
    assert h.check().ok


def test_two_tenants_holding_at_once_is_a_violation() -> None:
    h = (
        H()
        .op("reserve", A, 0, 10, "ok", ("RESERVED", A, 2))
        .op("reserve", B, 1, 9, "ok", ("RESERVED", B, 2))  # a second winner of the same CAS
    )
    report = h.check()
    assert not report.ok
    assert report.violations[0].key == N
    assert report.violations[0].stuck_at  # the report names the operations it could not place


def test_lost_acknowledged_write_is_a_violation() -> None:
    h = (
        H()
        .op("reserve", A, 0, 1, "ok", ("RESERVED", A, 2))
        .op("read", None, 5, 6, "ok", ("AVAILABLE", None, 1))  # the new primary never saw it
    )
    assert not h.check().ok
    assert checker.acknowledged_versions(h.ops) == {N: {2: ("RESERVED", A)}}


def test_unknown_outcome_may_or_may_not_have_applied() -> None:
    applied = H().op("reserve", A, 0, None, "info").op("read", None, 5, 6, "ok", ("RESERVED", A, 2))
    not_applied = H().op("reserve", A, 0, None, "info").op("read", None, 5, 6, "ok", ("AVAILABLE", None, 1))
    assert applied.check().ok
    assert not_applied.check().ok


def test_unknown_outcome_cannot_take_effect_before_it_was_invoked() -> None:
    h = (
        H()
        .op("read", None, 0, 1, "ok", ("RESERVED", A, 2))  # sees the reserve...
        .op("reserve", A, 2, None, "info")  # ...that was only invoked later
    )
    assert not h.check().ok


def test_refusal_on_stale_state_is_a_violation() -> None:
    h = (
        H()
        .op("reserve", A, 0, 1, "ok", ("RESERVED", A, 2))
        .op("release", A, 2, 3, "ok", ("AVAILABLE", None, 3))
        .op("reserve", B, 4, 5, "fail")  # refused as if A still held it: a stale read
    )
    assert not h.check().ok


def test_version_must_advance_by_one_per_change() -> None:
    h = H().op("reserve", A, 0, 1, "ok", ("RESERVED", A, 7))
    assert not h.check().ok


def test_recall_frees_a_reservation_and_quarantines_a_lease() -> None:
    h = (
        H()
        .op("reserve", A, 0, 1, "ok", ("RESERVED", A, 2))
        .op("recall", None, 2, 3, "ok", ("AVAILABLE", None, 3))
        .op("assign", B, 4, 5, "ok", ("ASSIGNED", B, 4))
        .op("release", A, 6, 7, "fail")  # not the holder
        .op("recall", None, 8, 9, "ok", ("QUARANTINED", None, 5))
    )
    assert h.check().ok


def test_load_history_round_trip(tmp_path: Path) -> None:
    lines = [
        {"type": "init", "key": N, "value": ["AVAILABLE", None, 1]},
        {"type": "invoke", "id": 0, "key": N, "f": "reserve", "tenant": A, "t": 1.0, "process": "c0"},
        {"type": "invoke", "id": 1, "key": N, "f": "reserve", "tenant": B, "t": 1.5, "process": "c1"},
        {"type": "ok", "id": 0, "t": 2.0, "value": ["RESERVED", A, 2]},
        {"type": "info", "id": 1, "t": 9.0, "error": "UNAVAILABLE:DATABASE_UNAVAILABLE"},
    ]
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ops, initial = checker.load_history(path.read_text().splitlines())
    assert initial == {N: ("AVAILABLE", None, 1)}
    assert [op.outcome for op in ops] == ["ok", "info"]
    assert math.isinf(ops[1].complete)  # unknown: open-ended
    assert checker.main([str(path)]) == 0


def test_history_without_init_record_is_refused() -> None:
    op = checker.Op(0, N, "reserve", A, 0, 1, "ok", ("RESERVED", A, 2))
    with pytest.raises(ValueError, match="no init record"):
        checker.check_history([op], {})


def test_search_budget_exhaustion_is_unknown_not_a_pass() -> None:
    h = H()
    for i in range(8):  # many open-ended unknowns, then an impossible read: a large search
        h.op("reserve" if i % 2 else "release", A, i, None, "info")
    h.op("read", None, 20, 21, "ok", ("ASSIGNED", B, 9))
    result = checker.check_key(N, h.ops, FREE, max_explored=10)
    assert result.unknown and not result.ok
    report = checker.Report([result])
    assert not report.ok and report.violations == [] and report.unknown == [result]
