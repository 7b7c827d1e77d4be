"""Static checks of the deployment and observability artefacts (deploy/, docs/runbooks/).

They parse files only (no cluster, no Prometheus): every alert of the readiness checklist
exists with a runbook, the shutdown and availability guarantees hold in the manifests, and
no credential is written into the repository. The alert expressions themselves are unit
tested by promtool (`make test-rules`).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.authz import GRPC_DEFAULT_PERMISSIONS, grpc_pool_permissions

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
PROM = ROOT / "deploy" / "prometheus"
RUNBOOKS = ROOT / "docs" / "runbooks"

# SERVICE_READINESS §3 "Alert configurations" (PoolExhaustionWarning/Critical are two alerts).
READINESS_ALERTS = {
    "NumberingValidateLeaseP95High",
    "NumberingValidateLeaseP99High",
    "NumberingUnavailableRetries",
    "NumberingShortCodeScarcityCritical",
    "NumberingPoolExhaustionWarning",
    "NumberingPoolExhaustionCritical",
    "NumberingLeaseImportFailed",
    "NumberingConflictSpike",
    "NumberingQuarantineBacklog",
    "NumberingAuditChainBroken",
    "NumberingOutboxLag",
    "NumberingRegulatorExportFailed",
    "NumberingRenewalFailureSpike",
    "NumberingCrossRegionLag",
    "NumberingReservationCleanupLag",
}
GRPC_CALLERS = {
    "sms-orchestrator",
    "routing-engine",
    "sender-id-registry",
    "billing-service",
    "customer-portal-bff",
    "compliance-service",
}


def _yaml_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*") if p.suffix in {".yml", ".yaml"})


def _docs(path: Path) -> list[dict[str, Any]]:
    """The file's documents, each caller its own copy; parsed once per content (the deploy
    tests read the same manifests hundreds of times, which cost seconds each in pure Python)."""
    return copy.deepcopy(_parse(path.read_text()))


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d is not None]  # noqa: S506 - a safe loader


def _manifests() -> list[dict[str, Any]]:
    """Every Kubernetes object (the kustomization file is build input, not an object)."""
    return [doc for path in _yaml_files(K8S) for doc in _docs(path) if doc.get("kind") != "Kustomization"]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [m for m in _manifests() if m.get("kind") == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind} {name}, found {len(found)}"
    return found[0]


def _container(deployment: str) -> dict[str, Any]:
    return _one("Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


def _rules() -> list[dict[str, Any]]:
    doc = _docs(PROM / "rules" / "numbering.rules.yml")[0]
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in _rules() if "alert" in r}


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(path, key, string) for every scalar string in a parsed document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                yield f"{path}.{key}", str(key), value
            else:
                yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str):
                yield f"{path}[{i}]", "", value
            else:
                yield from _strings(value, f"{path}[{i}]")


SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET_KEY|SECRET_ACCESS_KEY|ACCESS_KEY_ID|TOKEN|PRIVATE_KEY|API_KEY)$", re.I
)
CREDENTIAL_URL = re.compile(r"://[^/\s:@{}]+:(?!\{\{)[^@\s/{}]+@")
TOKEN_SHAPES = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}|\bhvs\.[A-Za-z0-9_-]{20,}|\bxox[bp]-")


def secret_findings(doc: dict[str, Any]) -> list[str]:
    """Literal credentials in one manifest. Allowed: references (secretRef, ExternalSecret
    remoteRef) and ExternalSecret templates whose values are filled in the cluster."""
    findings: list[str] = []
    kind = doc.get("kind")
    if kind == "Secret" and (doc.get("data") or doc.get("stringData")):
        findings.append(f"Secret {doc['metadata']['name']} carries data in the repository")
    for where, key, value in _strings(doc):
        if TOKEN_SHAPES.search(value):
            findings.append(f"{where}: looks like a private key or token")
        if CREDENTIAL_URL.search(value):
            findings.append(f"{where}: URL with a literal password")
        is_template = "{{" in value
        if kind == "ConfigMap" and SECRET_NAME.search(key) and value:
            findings.append(f"{where}: secret-like key {key} in a ConfigMap")
        if key == "value" and not is_template:  # env: [{name: X, value: Y}]
            findings.extend(_env_value_findings(doc, where, value))
    return findings


def _env_value_findings(doc: dict[str, Any], where: str, value: str) -> list[str]:
    """The `name` next to an env `value` found at `where`."""
    node: Any = doc
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", where)[:-1]:
        node = node[part[0]] if part[0] else node[int(part[1])]
    name = node.get("name", "") if isinstance(node, dict) else ""
    if SECRET_NAME.search(str(name)) and value:
        return [f"{where}: env {name} has a literal value"]
    return []


# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", _yaml_files(K8S, PROM), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_deploy_yaml_file_parses(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        assert isinstance(doc, dict)


def test_every_manifest_has_kind_api_version_and_name() -> None:
    for doc in _manifests():
        assert doc.get("apiVersion") and doc.get("kind"), doc
        assert doc.get("metadata", {}).get("name"), doc


# --- alerts, runbooks, promtool tests ---------------------------------------------------


def test_every_readiness_alert_has_a_rule() -> None:
    missing = READINESS_ALERTS - set(_alerts())
    assert not missing, f"alerts of SERVICE_READINESS §3 without a rule: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_alert_has_severity_summary_description_and_runbook(name: str) -> None:
    rule = _alerts()[name]
    assert rule["labels"]["severity"] in {"page", "ticket"}
    assert rule["labels"]["priority"] in {"sev1", "sev2", "sev3"}
    ann = rule["annotations"]
    assert ann.get("summary") and ann.get("description")
    assert ann["runbook_url"].endswith(f"/docs/runbooks/{name}.md"), ann["runbook_url"]
    runbook = RUNBOOKS / f"{name}.md"
    assert runbook.is_file(), f"{runbook} missing"
    text = runbook.read_text()
    for heading in ("## Meaning", "## Impact", "## First checks", "## Mitigation", "## Escalation"):
        assert heading in text, f"{runbook.name} lacks {heading}"


def test_audit_chain_broken_is_a_sev1_page() -> None:
    labels = _alerts()["NumberingAuditChainBroken"]["labels"]
    assert (labels["severity"], labels["priority"]) == ("page", "sev1")
    assert "for" not in _alerts()["NumberingAuditChainBroken"]


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in sorted((PROM / "tests").glob("*.yml")):
        for test in _docs(path)[0]["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = set(_alerts())
    assert alerts - firing == set(), f"no firing case: {sorted(alerts - firing)}"
    assert alerts - quiet == set(), f"no quiet case: {sorted(alerts - quiet)}"


def test_slo_burn_rate_alerts_use_a_long_and_a_short_window() -> None:
    alerts = _alerts()
    for name in ("NumberingValidateLeaseErrorBudgetBurnFast", "NumberingValidateLeaseLatencyBudgetBurnFast"):
        assert "ratio_rate1h" in alerts[name]["expr"] and "ratio_rate5m" in alerts[name]["expr"]
    for name in ("NumberingValidateLeaseErrorBudgetBurnSlow", "NumberingValidateLeaseLatencyBudgetBurnSlow"):
        assert "ratio_rate6h" in alerts[name]["expr"] and "ratio_rate30m" in alerts[name]["expr"]
    recorded = {r["record"] for r in _rules() if "record" in r}
    for sli in ("errors", "slow"):
        for window in ("5m", "30m", "1h", "6h"):
            assert f"numbering:validate_lease_{sli}:ratio_rate{window}" in recorded


def test_no_runbook_without_an_alert() -> None:
    orphans = {p.stem for p in RUNBOOKS.glob("Numbering*.md")} - set(_alerts())
    assert not orphans, f"runbooks for alerts that do not exist: {sorted(orphans)}"


# --- Kubernetes guarantees ----------------------------------------------------------------


def test_pdbs_keep_two_web_and_two_grpc_pods() -> None:
    for name in ("numbering-web", "numbering-grpc"):
        pdb = _one("PodDisruptionBudget", name)
        assert pdb["spec"]["minAvailable"] == 2
        component = name.removeprefix("numbering-")
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
        hpa = _one("HorizontalPodAutoscaler", name)
        assert hpa["spec"]["minReplicas"] > 2, "minReplicas must exceed the PDB or drains block"


def test_grpc_shutdown_drains_within_the_grace_period() -> None:
    spec = _one("Deployment", "numbering-grpc")["spec"]["template"]["spec"]
    grace = spec["terminationGracePeriodSeconds"]
    container = spec["containers"][0]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    sleep = int(pre_stop[-1].split()[-1])
    drain = int(_one("ConfigMap", "numbering-config")["data"]["GRPC_GRACE_SECONDS"])
    assert grace >= 35
    assert drain <= 30
    assert sleep + drain < grace, "the kubelet would SIGKILL a pod that is still draining"
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > grace, "liveness would kill a draining pod"


def test_every_workload_runs_non_root_read_only_with_resources() -> None:
    workloads = [m for m in _manifests() if m["kind"] in {"Deployment", "Job"}]
    assert {w["metadata"]["name"] for w in workloads} >= {
        "numbering-web",
        "numbering-grpc",
        "numbering-celery-worker",
        "numbering-celery-beat",
        "numbering-outbox-relay",
        "numbering-event-consumers",
        "numbering-reservation-expiry-listener",
        "numbering-migrate",
    }
    cronjobs = [m for m in _manifests() if m["kind"] == "CronJob"]
    assert {c["metadata"]["name"] for c in cronjobs} >= {"numbering-audit-partitions", "numbering-audit-archive"}
    for w in workloads + [c["spec"]["jobTemplate"] for c in cronjobs]:
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, w["metadata"]["name"]
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(
                c["resources"]["limits"]
            ), f"{w.get('metadata', {}).get('name')}/{c['name']} lacks requests/limits"


def test_web_probes_and_grpc_health_probe() -> None:
    web = _one("Deployment", "numbering-web")["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    grpc = _one("Deployment", "numbering-grpc")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        assert grpc[probe]["exec"]["command"][0] == "grpc_health_probe"


def test_celery_beat_is_a_singleton() -> None:
    beat = _one("Deployment", "numbering-celery-beat")["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    assert "numbering-celery-beat" not in {h["spec"]["scaleTargetRef"]["name"] for h in _hpas()}


def _hpas() -> list[dict[str, Any]]:
    return [m for m in _manifests() if m["kind"] == "HorizontalPodAutoscaler"]


def test_hpas_scale_on_cpu_and_requests_per_second() -> None:
    for hpa in _hpas():
        types = {m["type"] for m in hpa["spec"]["metrics"]}
        assert types == {"Resource", "Pods"}, hpa["metadata"]["name"]
        pods = next(m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods")
        assert pods["metric"]["name"].endswith("_requests_per_second")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in _hpas()} == {
        "numbering-web",
        "numbering-grpc",
        "numbering-grpc-write",
    }


def test_migration_job_runs_as_the_owner_role() -> None:
    job = _one("Job", "numbering-migrate")["spec"]["template"]["spec"]
    container = job["containers"][0]
    # The image's ENTRYPOINT (deploy/entrypoint.sh) runs `manage.py migrate --database owner --no-input`.
    assert "command" not in container and container["args"] == ["migrate"]
    assert "manage.py migrate --database owner --no-input" in (ROOT / "deploy" / "entrypoint.sh").read_text()
    assert {"secretRef": {"name": "numbering-migrate-secrets"}} in container["envFrom"]
    owner = _one("ExternalSecret", "numbering-migrate-secrets")["spec"]["target"]["template"]["data"]
    app = _one("ExternalSecret", "numbering-secrets")["spec"]["target"]["template"]["data"]
    # Settings insist both URLs name the same database with different roles; only the
    # migration Job gets the owner's password, the app pods only the app role's.
    assert owner["DATABASE_OWNER_URL"].startswith("postgres://numbering_owner:{{")
    assert app["DATABASE_URL"].startswith("postgres://numbering_app:{{")
    assert "{{" not in app["DATABASE_OWNER_URL"] and "{{" not in owner["DATABASE_URL"]
    same_db = {u.rsplit("@", 1)[1] for u in (*owner.values(), *app.values()) if u.startswith("postgres://")}
    assert len(same_db) == 1, same_db


def test_grpc_ingress_admits_only_the_allowlisted_callers() -> None:
    """Each pool (ADR 1101) admits the callers of its methods: the hot pool the readers, the
    mutation pool the portal and compliance; together exactly the CN allowlist."""
    by_pool = {}
    for name, component in (("numbering-grpc-ingress", "grpc"), ("numbering-grpc-write-ingress", "grpc-write")):
        policy = _one("NetworkPolicy", name)["spec"]
        assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == component
        (rule,) = policy["ingress"]
        callers = set()
        for peer in rule["from"]:
            namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == namespace
            callers.add(namespace)
        assert rule["ports"] == [{"port": 50051, "protocol": "TCP"}]
        by_pool[component] = callers
    assert by_pool["grpc"] | by_pool["grpc-write"] == GRPC_CALLERS
    assert by_pool["grpc-write"] == {"customer-portal-bff", "compliance-service"}
    hot = grpc_pool_permissions(GRPC_DEFAULT_PERMISSIONS, "hot")
    assert all(cn in hot for cn in by_pool["grpc"]), "a hot-pool caller the hot pool's allowlist refuses"
    pools = {c["env"][0]["value"] for c in (_container("numbering-grpc"), _container("numbering-grpc-write"))}
    assert pools == {"hot", "mutations"}
    web = _one("NetworkPolicy", "numbering-web-ingress")["spec"]["ingress"]
    web_callers = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in web[0]["from"]]
    assert web_callers == ["kong", "regulator-portal-service"]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in web[0]["from"]] == web_callers
    deny = _one("NetworkPolicy", "numbering-default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}


# --- secrets ------------------------------------------------------------------------------


def test_no_manifest_contains_a_literal_secret() -> None:
    findings = [f"{doc['kind']}/{doc['metadata']['name']}: {f}" for doc in _manifests() for f in secret_findings(doc)]
    assert findings == []


@pytest.mark.parametrize(
    "doc",
    [
        {"kind": "Secret", "metadata": {"name": "x"}, "stringData": {"password": "hunter2"}},
        {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"DJANGO_SECRET_KEY": "abc"}},
        {
            "kind": "ConfigMap",
            "metadata": {"name": "x"},
            "data": {"DATABASE_URL": "postgres://app:s3cret@db/numbering"},
        },
        {
            "kind": "Deployment",
            "metadata": {"name": "x"},
            "spec": {"containers": [{"env": [{"name": "VAULT_TOKEN", "value": "abc"}]}]},
        },
        {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"KEY": "-----BEGIN RSA PRIVATE KEY-----"}},
    ],
    ids=["secret-data", "configmap-secret-key", "url-password", "env-token", "pem"],
)
def test_secret_scan_catches_planted_secrets(doc: dict[str, Any]) -> None:
    assert secret_findings(doc)


def test_secret_scan_accepts_references_and_templates() -> None:
    doc = {
        "kind": "ExternalSecret",
        "metadata": {"name": "x"},
        "spec": {"target": {"template": {"data": {"DATABASE_URL": "postgres://{{ .username }}:{{ .password }}@db/n"}}}},
    }
    assert secret_findings(doc) == []
