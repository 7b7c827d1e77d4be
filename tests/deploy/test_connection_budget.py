"""PostgreSQL connection budget (issue 15 item 4, ADR 1503): every thread that touches
PostgreSQL keeps one persistent connection (CONN_MAX_AGE), so the connections a deployment
can open are replicas × processes × threads. At the HPAs' maximum the sum must stay within
the budget ADR 1503 sizes the primary's max_connections for; raising a replica count, a
worker count or a thread count without raising the budget fails here."""

from __future__ import annotations

from typing import Any

from tests.deploy.test_deploy_artifacts import _manifests, _one

BUDGET = 500  # ADR 1503: max_connections 560 on the primary = this + reserved + operators
# Measured per process by bench/lifecycle_mix (pg_stat_activity by application_name).
FIXED_PER_POD = {
    "numbering-outbox-relay": 2,
    "numbering-event-consumers": 2,
    "numbering-reservation-expiry-listener": 1,
    "numbering-lease-cache-sync": 2,
    "numbering-celery-beat": 0,
}


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    config = _one("ConfigMap", "numbering-config")["data"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {**config, **{e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}}


def _max_replicas(name: str, deployment: dict[str, Any]) -> int:
    hpas = [m for m in _manifests() if m["kind"] == "HorizontalPodAutoscaler"]
    hpas = [m for m in hpas if m["spec"]["scaleTargetRef"]["name"] == name]
    return int(hpas[0]["spec"]["maxReplicas"]) if hpas else int(deployment["spec"]["replicas"])


def connections_per_pod(name: str, env: dict[str, str]) -> int:
    if name in ("numbering-grpc", "numbering-grpc-write"):
        return int(env.get("GRPC_WORKERS", "2")) * int(env.get("GRPC_DB_THREADS", "8"))
    if name == "numbering-web":
        return int(env.get("WEB_WORKERS", "1")) * int(env.get("WEB_THREADS", "8"))
    if name == "numbering-celery-worker":
        return int(env.get("CELERY_WORKER_CONCURRENCY", "4"))
    return FIXED_PER_POD[name]


def test_the_deployments_at_their_maximum_scale_fit_the_connection_budget() -> None:
    total, rows = 0, {}
    for deployment in (m for m in _manifests() if m["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        per_pod = connections_per_pod(name, _env(deployment))
        rows[name] = _max_replicas(name, deployment) * per_pod
        total += rows[name]
    assert set(rows) >= {"numbering-grpc", "numbering-grpc-write", "numbering-web", "numbering-celery-worker"}
    assert total <= BUDGET, rows
    # The two gRPC pools hold most of it: the numbers ADR 1503 derives its table from.
    assert rows["numbering-grpc"] == 12 * 2 * 8
    assert rows["numbering-grpc-write"] == 6 * 2 * 16
