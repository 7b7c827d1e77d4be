"""deploy/logging/promtail.yaml against lines captured from the real processes.

Promtail (and Grafana Alloy) is not installable on the CI machine (no Debian or PyPI
package), so this test validates the config's structure and runs its pipeline stages as
promtail defines them (cri, json with plain-key expressions, labels, timestamp,
structured_metadata) in Python over every captured line, wrapped as the container runtime
writes it to /var/log/pods.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "logging" / "promtail.yaml"
SUPPORTED_STAGES = {"cri", "json", "labels", "timestamp", "structured_metadata"}
ALLOWED_LABELS = {"process", "level", "service"}
# promtail's cri stage regex (pkg/logentry/stages/extensions.go)
CRI = re.compile(r"(?s)^(?P<time>\S+?) (?P<stream>stdout|stderr) (?P<flags>\S+?) (?P<content>.*)$")
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def scrape_config() -> dict[str, Any]:
    (job,) = yaml.safe_load(CONFIG.read_text())["scrape_configs"]
    return job


def stages() -> list[tuple[str, Any]]:
    result = []
    for stage in scrape_config()["pipeline_stages"]:
        ((name, body),) = stage.items()
        result.append((name, body))
    return result


def run_pipeline(raw: str, target_labels: dict[str, str]) -> tuple[dict[str, str], dict[str, Any], str, Any]:
    """(labels, structured metadata, line, timestamp) as promtail would ship `raw`."""
    labels, extracted, metadata, line, timestamp = dict(target_labels), {}, {}, raw, None
    for name, body in stages():
        if name == "cri":
            match = CRI.match(line)
            assert match, f"not a CRI line: {line!r}"
            line = match["content"]
            extracted["stream"] = match["stream"]
        elif name == "json":
            try:
                document = json.loads(line)
            except json.JSONDecodeError:
                continue  # promtail logs and skips the stage; the line still ships
            for key, expression in body["expressions"].items():
                value = document.get(expression or key)
                if value is not None:
                    extracted[key] = value if isinstance(value, str) else json.dumps(value)
        elif name == "labels":
            for key, source in body.items():
                if (source or key) in extracted:
                    labels[key] = extracted[source or key]
        elif name == "timestamp":
            if body["source"] in extracted:
                assert body["format"] == "RFC3339Nano"
                timestamp = datetime.fromisoformat(extracted[body["source"]])
        elif name == "structured_metadata":
            metadata = {k: extracted[v or k] for k, v in body.items() if (v or k) in extracted}
    return labels, metadata, line, timestamp


def test_the_config_uses_known_stages_and_labels_only_process_and_level() -> None:
    job = scrape_config()
    names = [name for name, _ in stages()]
    assert set(names) <= SUPPORTED_STAGES and names[0] == "cri"
    (labels,) = [body for name, body in stages() if name == "labels"]
    assert set(labels) == {"process", "level"}
    for name, body in stages():
        if name == "json":
            for key, expression in body["expressions"].items():
                assert re.fullmatch(r"[a-z_]+", expression or key), "only plain-key JMESPath is emulated"
    relabelled = {r.get("target_label") for r in job["relabel_configs"]} - {None, "__path__"}
    assert relabelled <= ALLOWED_LABELS
    text = CONFIG.read_text()
    assert "labelmap" not in text, "labelmap would copy every pod label into the streams"


def test_captured_lines_ship_with_process_and_level_labels_only(process_logs: dict[str, list[str]]) -> None:
    shipped = 0
    for process, lines in process_logs.items():
        for raw in lines:
            if not raw.strip():
                continue
            cri = f"2026-12-01T05:00:00.000000000Z stderr F {raw}"
            labels, metadata, line, timestamp = run_pipeline(cri, {"process": process, "service": "numbering"})
            assert set(labels) <= ALLOWED_LABELS, labels
            assert labels["process"] == process
            if raw.startswith("{"):
                assert labels["level"] in LEVELS, raw[:200]
                assert timestamp is not None and timestamp.tzinfo is not None
                document = json.loads(line)
                assert line == raw and document["message"] is not None
                assert set(metadata) <= {"request_id", "trace_id"}
                shipped += 1
    assert shipped > 20


def test_a_tenant_or_number_never_becomes_a_label() -> None:
    raw = json.dumps(
        {
            "time": "2026-12-01T05:00:00.123+00:00",
            "level": "INFO",
            "logger": "numbering",
            "message": "reserved +93791****67",
            "process": "web",
            "request_id": "r1",
            "trace_id": None,
            "caller": "numbering/services.py:1",
            "tenant": "7d3c2f2e-0000-4000-8000-000000000001",
            "number": "+93791****67",
        }
    )
    labels, metadata, _, _ = run_pipeline(f"2026-12-01T05:00:00Z stdout F {raw}", {"service": "numbering"})
    assert labels == {"service": "numbering", "process": "web", "level": "INFO"}
    assert metadata == {"request_id": "r1"}


@pytest.mark.parametrize("raw", ["worker: Warm shutdown (MainProcess)", "{not json"])
def test_a_line_that_is_not_json_still_ships_with_the_kubernetes_process(raw: str) -> None:
    labels, _, line, timestamp = run_pipeline(f"2026-12-01T05:00:00Z stdout F {raw}", {"process": "celery-worker"})
    assert labels == {"process": "celery-worker"} and line == raw and timestamp is None
