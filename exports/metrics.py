"""Prometheus metrics of the export pipeline (DESIGN §8: export last success)."""

from __future__ import annotations

import math

from prometheus_client import Counter, Gauge

EXPORT_FAILURES = Counter(
    "numbering_regulator_export_failures", "Monthly regulator export runs that failed (alert on increase)"
)
EXPORT_LAST_SUCCESS = Gauge(
    "numbering_regulator_export_last_success_timestamp_seconds",
    "Unix time of the last regulator export confirmed in WORM storage",
)


def _last_success_from_db() -> float:
    """Read at scrape time from the database, so every process (web, worker) reports the
    same value and a restart does not reset it to 0 (which would page as 'stale')."""
    from django.db.models import Max

    from exports.models import RegulatorExport

    try:
        latest = RegulatorExport.objects.filter(status=RegulatorExport.Status.UPLOADED).aggregate(
            at=Max("uploaded_at")
        )["at"]
    except Exception:  # noqa: BLE001 - a scrape must never fail because the database is away
        return math.nan
    return latest.timestamp() if latest else math.nan


EXPORT_LAST_SUCCESS.set_function(_last_success_from_db)
