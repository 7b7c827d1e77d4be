"""The overdue-reservation gauges are read from PostgreSQL at scrape time by the web process
(ADR 1502), so NumberingReservationCleanupLag can fire while the worker that cleans up is dead."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections, transaction
from django.utils import timezone
from prometheus_client import REGISTRY, generate_latest

from config.web_metrics import DatabaseReadings, database_readings, web_registry
from core.rls import rls_scope
from numbering.lifecycle import State
from numbering.models import Number
from numbering.observers import overdue_reservations
from tests.conftest import owner_dsn
from tests.numbering.helpers import number_in


def _overdue_by(n: Number, seconds: int) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        Number.objects.filter(id=n.id).update(reserved_until=timezone.now() - timedelta(seconds=seconds))


@pytest.mark.django_db
def test_counts_only_reservations_past_their_deadline_and_the_oldest_age(alice: Any, bob: Any) -> None:
    assert overdue_reservations() == (0, 0.0)
    old, recent = number_in(State.RESERVED, alice), number_in(State.RESERVED, bob)
    number_in(State.RESERVED, alice)  # still inside its TTL
    number_in(State.ASSIGNED, bob)
    _overdue_by(old, 95)
    _overdue_by(recent, 5)
    count, oldest = overdue_reservations()
    assert count == 2
    assert 90 <= oldest < 120


def _scrape(refresh: bool = True) -> str:
    """What Prometheus gets from the web process: the readings taken on a thread of their own
    (as the reader thread does), then rendered."""
    readings = database_readings()
    if refresh:
        thread = threading.Thread(target=_refresh_and_close, args=(readings,))
        thread.start()
        thread.join(30)
    return generate_latest(web_registry(readings)).decode()


def _refresh_and_close(readings: DatabaseReadings) -> None:
    """One reading on a thread of its own, whose connection goes with it (as the reader
    thread's would at exit): the test database can then be dropped."""
    try:
        readings.refresh()
    finally:
        connections.close_all()


def _sample(text: str, name: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(name + " "))
    return float(line.split()[1])


def test_the_web_metrics_serve_the_overdue_age_with_no_worker_running(committed: None, alice: Any) -> None:
    n = number_in(State.RESERVED, alice)
    _overdue_by(n, 75)
    text = _scrape()
    assert 70 <= _sample(text, "numbering_reservation_overdue_seconds") < 120
    assert _sample(text, "numbering_reservations_overdue") == 1
    # The default registry is served too, and never queries the database itself.
    assert "python_info" in text
    assert REGISTRY.get_sample_value("numbering_reservation_overdue_seconds") is None


def test_a_silent_database_costs_the_readings_never_the_scrape(committed: None, alice: Any) -> None:
    """A lock holds the table: the reader thread waits (its read gives up at its 2 s statement
    timeout), and a scrape meanwhile answers at once with every other metric (ADR 1506).
    Before, a gauge read at scrape in every Django process timed out every scrape during the
    postgres-partition drill."""
    import time

    import psycopg

    n = number_in(State.RESERVED, alice)
    _overdue_by(n, 75)
    readings = database_readings()
    readings.refresh()
    with psycopg.connect(owner_dsn()) as locker:
        locker.execute("LOCK TABLE numbering_number IN ACCESS EXCLUSIVE MODE")
        reader = threading.Thread(target=_refresh_and_close, args=(readings,))
        reader.start()
        started = time.monotonic()
        text = generate_latest(web_registry(readings)).decode()
        took = time.monotonic() - started
        reader.join(30)
        locker.rollback()
    # A scrape that waited on the locked table would take the reading's 2 s statement
    # timeout; a loaded CI box took 0.56 s to render without waiting, so the line is 1.5 s.
    assert took < 1.5, took
    assert "python_info" in text
    assert 70 <= _sample(text, "numbering_reservation_overdue_seconds") < 120  # the last reading


def test_a_reading_older_than_three_intervals_is_not_served() -> None:
    # Served for three intervals (3 s: room for a slow render on a loaded box), then not.
    readings = DatabaseReadings({"x": lambda: [_gauge("numbering_test_reading", 1.0)]}, interval=1.0)
    readings.refresh()
    assert "numbering_test_reading 1.0" in generate_latest(web_registry(readings)).decode()
    time.sleep(3.2)
    assert "numbering_test_reading" not in generate_latest(web_registry(readings)).decode()


def test_a_failed_reading_keeps_the_last_good_one_until_it_is_stale() -> None:
    calls: list[int] = []

    def flaky() -> list[Any]:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("database away")
        return [_gauge("numbering_test_flaky", 2.0)]

    readings = DatabaseReadings({"x": flaky}, interval=10)
    readings.refresh()
    readings.refresh()
    assert "numbering_test_flaky 2.0" in generate_latest(web_registry(readings)).decode()


def _gauge(name: str, value: float) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    gauge = GaugeMetricFamily(name, "test")
    gauge.add_metric([], value)
    return gauge


def test_the_reader_survives_a_database_it_cannot_reach() -> None:
    """No database access in this test: every read fails, from the connection check on.
    The reader thread must log and carry on, never die (it did, found by CI)."""
    readings = database_readings()
    readings.refresh()
    readings.refresh()
    text = generate_latest(web_registry(readings)).decode()
    assert "numbering_reservation_overdue_seconds" not in text and "python_info" in text
