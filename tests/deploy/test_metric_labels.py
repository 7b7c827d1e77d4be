"""No metric of ours carries a label Prometheus owns (issue 15): `job` and `instance` are set by
the scrape, so an exported `job` arrives as `exported_job` and a rule filtering on `job=` never
matches (NumberingRenewalFailureSpike could not fire before its label became `job_name`)."""

from __future__ import annotations

import importlib
import pkgutil

from prometheus_client import REGISTRY

RESERVED = {"job", "instance"}
APPS = ["core", "numbering", "pools", "contracts", "audit", "exports", "events", "grpc_server", "config"]


def _import_everything() -> None:
    for app in APPS:
        package = importlib.import_module(app)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{app}."):
            if ".migrations" in info.name or info.name.endswith(("wsgi", "asgi")) or ".settings." in info.name:
                continue
            try:
                importlib.import_module(info.name)
            except Exception:  # noqa: BLE001, S112 - a module that needs a running process; its metrics are elsewhere
                continue


def test_no_metric_uses_a_label_prometheus_owns() -> None:
    _import_everything()
    offenders = []
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - the registry has no public list
        for name in ("_labelnames",):
            labels = set(getattr(collector, name, ()) or ())
            if labels & RESERVED:
                offenders.append((getattr(collector, "_name", repr(collector)), sorted(labels & RESERVED)))
    assert not offenders, offenders
    assert REGISTRY.get_sample_value("numbering_job_items_total", {"job_name": "x", "result": "y"}) is None
