"""Prometheus metrics of the export pipeline (DESIGN §8: export last success)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EXPORT_FAILURES = Counter(
    "numbering_regulator_export_failures", "Monthly regulator export runs that failed (alert on increase)"
)
EXPORT_LAST_SUCCESS = Gauge(
    "numbering_regulator_export_last_success_timestamp_seconds",
    "Unix time of the last regulator export confirmed in WORM storage",
)
