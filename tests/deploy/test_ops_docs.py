"""The operator documents (docs/ops/, docs/runbooks/) name only things that exist.

Every `manage.py X` is a registered management command, every `make X` a Makefile target,
every metric `numbering_...` is emitted by the code or recorded/read by the alert rules;
and the escalation matrix is exactly what its generator writes from the alert labels.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([*(ROOT / "docs" / "ops").glob("*.md"), *(ROOT / "docs" / "runbooks").glob("*.md")])
CODE_DIRS = ("core", "config", "numbering", "pools", "contracts", "audit", "exports", "events", "grpc_server")
REQUIRED = {
    "on-call-playbook.md",
    "escalation-matrix.md",
    "mno-contract-operations.md",
    "atra-export-sop.md",
    "rollback-plan.md",
}

FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"(?:manage\.py|entrypoint\.sh manage)\s+([a-z_]+)")
MAKE = re.compile(r"(?<![\w-])make\s+([a-z][a-z0-9-]*)")
METRIC = re.compile(r"(?<![\w:])(numbering_[a-z0-9_]+)")


def code_of(text: str) -> str:
    """The code in a Markdown text: fenced blocks and inline spans (prose is not checked)."""
    return "\n".join([*FENCE.findall(text), *INLINE.findall(FENCE.sub("", text))])


@cache
def make_targets() -> set[str]:
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([a-zA-Z][\w .-]*?):(?!=)", line)
        if match:
            targets |= set(match.group(1).split())
    return targets


@cache
def metric_corpus() -> str:
    parts = [p.read_text() for d in CODE_DIRS for p in (ROOT / d).rglob("*.py") if "migrations" not in p.parts]
    parts += [p.read_text() for p in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")]
    return "\n".join(parts)


@cache
def table_names() -> set[str]:
    """Runbooks also name tables an operator queries (numbering_leasecachechange, …)."""
    from django.apps import apps

    return {model._meta.db_table for model in apps.get_models()}


def metric_exists(name: str) -> bool:
    if name in table_names():
        return True
    corpus = metric_corpus()
    base = re.sub(r"_(bucket|count|sum)$", "", name)
    candidates = {name, base, base.removesuffix("_total")}
    return any(re.search(rf"\b{re.escape(c)}\b", corpus) for c in candidates)


def unknown_references(text: str) -> list[str]:
    code = code_of(text)
    found = [f"manage.py {c}: no such command" for c in COMMAND.findall(code) if c not in get_commands()]
    found += [f"make {t}: no such target" for t in MAKE.findall(code) if t not in make_targets()]
    found += [f"{m}: no such metric in the code or rules" for m in METRIC.findall(code) if not metric_exists(m)]
    return found


def test_every_required_document_exists() -> None:
    present = {p.name for p in (ROOT / "docs" / "ops").glob("*.md")}
    assert present >= REQUIRED, f"missing: {sorted(REQUIRED - present)}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_target_and_metric_a_document_names_exists(doc: Path) -> None:
    assert unknown_references(doc.read_text()) == []


def test_the_documents_do_name_commands_targets_and_metrics() -> None:
    code = "\n".join(code_of((ROOT / "docs" / "ops" / name).read_text()) for name in REQUIRED)
    assert len(set(COMMAND.findall(code))) >= 10
    assert {"run", "test", "image-smoke", "docs-ops"} <= set(MAKE.findall(code))
    assert len(set(METRIC.findall(code))) >= 10


def test_the_check_catches_invented_names() -> None:
    text = (
        "Run `python manage.py frobnicate_numbers`, then `make deploy-prod`, and watch\n"
        "```promql\nrate(numbering_imaginary_total[5m])\n```\n"
        "Prose such as make sure or numbering_whatever outside code is not checked."
    )
    assert sorted(unknown_references(text)) == [
        "make deploy-prod: no such target",
        "manage.py frobnicate_numbers: no such command",
        "numbering_imaginary_total: no such metric in the code or rules",
    ]


def test_histogram_and_counter_suffixes_resolve_to_their_family() -> None:
    assert metric_exists("numbering_validate_lease_seconds_bucket")
    assert metric_exists("numbering_regulator_export_failures_total")
    assert not metric_exists("numbering_validate_lease_millis_bucket")


def test_the_escalation_matrix_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("escalation_matrix", ROOT / "deploy/prometheus/escalation_matrix.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "ops" / "escalation-matrix.md").read_text()
    assert committed == module.render(), "docs/ops/escalation-matrix.md is stale: run `make docs-ops`"
    for name in ("NumberingAuditChainBroken", "NumberingServiceDown", "NumberingMultiRegionSplitBrain"):
        row = next(line for line in committed.splitlines() if line.startswith(f"| `{name}`"))
        assert "Platform SRE" in row and "Database/SRE lead" in row and "paged at once" in row


def test_the_generator_refuses_an_alert_without_a_policy(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("escalation_matrix", ROOT / "deploy/prometheus/escalation_matrix.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: up == 0\n"
        "    labels: {severity: page, priority: sev4, team: commerce-eng}\n"
    )
    with pytest.raises(ValueError, match="X: no escalation policy for severity=page priority=sev4"):
        module.render(rules)
