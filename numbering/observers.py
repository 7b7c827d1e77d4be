"""Gauges read from PostgreSQL, by a process that is not the one doing
the work they watch (ADR 1502).

The reservation safety net sets `numbering_reservation_cleanup_lag_seconds` itself, when it
runs: a dead Celery worker or beat never updates it, so an alert on it cannot fire for the
very failure it is meant to catch. `numbering_reservation_overdue_seconds` is read by the
web process's metrics reader (config/web_metrics.py), whoever is (or is not) expiring
reservations; a scrape serves its last reading and never waits on PostgreSQL (ADR 1506).
"""

from __future__ import annotations

from django.db import connection, transaction
from prometheus_client.core import GaugeMetricFamily

from core.rls import rls_scope

OVERDUE_SQL = (
    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(reserved_until)), 0)"
    " FROM numbering_number WHERE state = 'RESERVED' AND reserved_until <= now()"
)


def overdue_reservations() -> tuple[int, float]:
    """(how many RESERVED numbers are past reserved_until, how far past the oldest is, s)."""
    with transaction.atomic(), rls_scope(platform=True), connection.cursor() as cursor:
        # A reading must not queue behind a slow database: no reading rather than a late one.
        cursor.execute("SET LOCAL statement_timeout = 2000")
        cursor.execute(OVERDUE_SQL)
        count, oldest = cursor.fetchone()
    return int(count), max(float(oldest), 0.0)


def overdue_families() -> list[GaugeMetricFamily]:
    """Both overdue gauges, read from PostgreSQL (raises when it does not answer)."""
    count, oldest = overdue_reservations()
    oldest_gauge = GaugeMetricFamily(
        "numbering_reservation_overdue_seconds",
        "How far past reserved_until the oldest RESERVED number is, read from PostgreSQL (0 = none)",
    )
    oldest_gauge.add_metric([], oldest)
    count_gauge = GaugeMetricFamily("numbering_reservations_overdue", "RESERVED numbers past reserved_until")
    count_gauge.add_metric([], count)
    return [oldest_gauge, count_gauge]
