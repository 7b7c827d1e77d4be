"""Each runbook of an alert a chaos drill proves names that drill (issue 15), and the planted
misconfiguration's alert (ADR 1507) names the command that plants it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos.run import DRILL_ALERTS, PLANTED_ALERTS, alerts_of

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"


def proven_by(alert: str) -> str:
    text = (RUNBOOKS / f"{alert}.md").read_text()
    assert "## Proven by" in text, f"{alert}.md has no 'Proven by' section"
    return text.split("## Proven by", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("drill", sorted(d for d in DRILL_ALERTS if alerts_of(d)))
def test_the_runbook_of_each_drilled_alert_names_its_drill(drill: str) -> None:
    for alert in alerts_of(drill):
        assert f"drill-{drill}" in proven_by(alert), f"{alert}.md does not name make drill-{drill}"


@pytest.mark.parametrize("drill", sorted(PLANTED_ALERTS))
def test_the_runbook_of_a_planted_alert_names_the_planting_command(drill: str) -> None:
    (alert,) = alerts_of(drill, planted=True)
    section = proven_by(alert)
    assert f"drill-{drill}" in section and "--cache-policy" in section
