"""The DESIGN §8 metric families the alert rules read are really emitted."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from contracts.imports import import_file
from core import errors
from numbering import jobs, services
from numbering.lifecycle import State
from tests.contracts.conftest import HEADER, msisdn_rows, sign_csv
from tests.factories import NumberFactory
from tests.numbering.helpers import OPS, number_in

pytestmark = pytest.mark.django_db


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_lifecycle_transitions_and_cas_conflicts_are_counted(alice: Any) -> None:
    ok = {"action": "reserve", "result": "ok"}
    conflict = {"action": "reserve", "result": "conflict"}
    before = (
        sample("numbering_lifecycle_transitions_total", ok),
        sample("numbering_lifecycle_transitions_total", conflict),
    )
    conflicts_before = sample("numbering_cas_conflicts_total", {"action": "reserve"})
    with pytest.raises(errors.Conflict):
        services.number_reserve(number=NumberFactory().number, tenant_id=alice.id, actor=OPS, expected_version=5)
    services.number_reserve(number=NumberFactory().number, tenant_id=alice.id, actor=OPS)
    after = (
        sample("numbering_lifecycle_transitions_total", ok),
        sample("numbering_lifecycle_transitions_total", conflict),
    )
    assert after == (before[0] + 1, before[1] + 1)
    assert sample("numbering_cas_conflicts_total", {"action": "reserve"}) == conflicts_before + 1


def test_import_results_are_counted_per_issuer(roshan: Any, system: Any) -> None:
    imported = {"issuer": "ROSHAN", "result": "imported"}
    rejected = {"issuer": "ROSHAN", "result": "rejected"}
    start = (
        sample("numbering_inventory_imports_total", imported),
        sample("numbering_inventory_imports_total", rejected),
    )
    signed = sign_csv(HEADER + msisdn_rows(2))
    assert import_file(issuer_code="ROSHAN", csv_file=signed.csv, signature=signed.signature, actor=system).committed
    bad = sign_csv(HEADER + msisdn_rows(2, start=10))
    refused = import_file(issuer_code="ROSHAN", csv_file=bad.csv + b"\n", signature=bad.signature, actor=system)
    assert not refused.committed
    end = (sample("numbering_inventory_imports_total", imported), sample("numbering_inventory_imports_total", rejected))
    assert end == (start[0] + 1, start[1] + 1)


def test_the_quarantine_backlog_gauges_show_what_the_sweep_left(alice: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    number_in(State.QUARANTINED, alice, due=True)
    jobs.quarantine_sweep()
    assert sample("numbering_quarantine_backlog", {}) == 0
    assert sample("numbering_quarantine_backlog_oldest_seconds", {}) == 0
    number_in(State.QUARANTINED, alice, due=True)
    monkeypatch.setattr(services, "number_end_quarantine", _refuse)
    jobs.quarantine_sweep()
    assert sample("numbering_quarantine_backlog", {}) == 1
    assert sample("numbering_quarantine_backlog_oldest_seconds", {}) > 0


def _refuse(**_: Any) -> Any:
    raise errors.InvalidTransition("refused for the test")
