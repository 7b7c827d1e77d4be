"""The overdue-reservation gauges are read from PostgreSQL at scrape time by the web process
(ADR 1502), so NumberingReservationCleanupLag can fire while the worker that cleans up is dead."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from prometheus_client import REGISTRY, generate_latest

from config.web_metrics import web_registry
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


def _scrape() -> str:
    """What Prometheus gets from the web process: rendered in a thread of its own, as the
    metrics server does (the collector closes that thread's connection)."""
    out: list[str] = []
    thread = threading.Thread(target=lambda: out.append(generate_latest(web_registry()).decode()))
    thread.start()
    thread.join(30)
    return out[0]


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


def test_a_slow_database_is_no_sample_not_a_slow_scrape(committed: None) -> None:
    """A lock holds the table: the read gives up at its 2 s statement timeout and the scrape
    answers without the gauge rather than hanging (Prometheus would mark the target down)."""
    import time

    import psycopg

    with psycopg.connect(owner_dsn()) as locker:
        locker.execute("LOCK TABLE numbering_number IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        text = _scrape()
        took = time.monotonic() - started
        locker.rollback()
    assert "numbering_reservation_overdue_seconds" not in text
    assert "python_info" in text
    assert took < 10
