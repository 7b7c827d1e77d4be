"""Gauges measured at scrape time from PostgreSQL, by a process that is not the one doing
the work they watch (ADR 1502).

The reservation safety net sets `numbering_reservation_cleanup_lag_seconds` itself, when it
runs: a dead Celery worker or beat never updates it, so an alert on it cannot fire for the
very failure it is meant to catch. `numbering_reservation_overdue_seconds` is read by the
web process's metrics server at each scrape, whoever is (or is not) expiring reservations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import connection, transaction
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.rls import rls_scope

log = logging.getLogger(__name__)

OVERDUE_SQL = (
    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(reserved_until)), 0)"
    " FROM numbering_number WHERE state = 'RESERVED' AND reserved_until <= now()"
)


def overdue_reservations() -> tuple[int, float]:
    """(how many RESERVED numbers are past reserved_until, how far past the oldest is, s)."""
    with transaction.atomic(), rls_scope(platform=True), connection.cursor() as cursor:
        # A scrape must never queue behind a slow database: answer nothing rather than late.
        cursor.execute("SET LOCAL statement_timeout = 2000")
        cursor.execute(OVERDUE_SQL)
        count, oldest = cursor.fetchone()
    return int(count), max(float(oldest), 0.0)


class OverdueReservationsCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            count, oldest = overdue_reservations()
        except Exception as exc:  # noqa: BLE001 - a failed read is no sample, never a failed scrape
            log.warning("overdue reservations not measured: %s", exc)
            return
        finally:
            # The metrics server runs each scrape in a new thread: its connection goes with it.
            connection.close()
        oldest_gauge = GaugeMetricFamily(
            "numbering_reservation_overdue_seconds",
            "How far past reserved_until the oldest RESERVED number is, read from PostgreSQL at scrape (0 = none)",
        )
        oldest_gauge.add_metric([], oldest)
        yield oldest_gauge
        count_gauge = GaugeMetricFamily(
            "numbering_reservations_overdue", "RESERVED numbers past reserved_until, read from PostgreSQL at scrape"
        )
        count_gauge.add_metric([], count)
        yield count_gauge
