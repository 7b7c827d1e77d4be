"""Prometheus metrics of the export pipeline (DESIGN §8: export last success)."""

from __future__ import annotations

import math

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

EXPORT_FAILURES = Counter(
    "numbering_regulator_export_failures", "Monthly regulator export runs that failed (alert on increase)"
)
LAST_SUCCESS_NAME = "numbering_regulator_export_last_success_timestamp_seconds"


def last_success_families() -> list[GaugeMetricFamily]:
    """The last regulator export confirmed in WORM storage, read from PostgreSQL, so every
    restart reports the same value and never resets it to 0 (which would page as "stale").
    Read by the web process's metrics reader, never at scrape (config/web_metrics.py, ADR
    1506); raises when the database does not answer."""
    from django.db.models import Max

    from exports.models import RegulatorExport

    latest = RegulatorExport.objects.filter(status=RegulatorExport.Status.UPLOADED).aggregate(at=Max("uploaded_at"))[
        "at"
    ]
    gauge = GaugeMetricFamily(LAST_SUCCESS_NAME, "Unix time of the last regulator export confirmed in WORM storage")
    gauge.add_metric([], latest.timestamp() if latest else math.nan)
    return [gauge]
