"""Sweeps act on exactly the due rows, through the services, and a second run does nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.utils import timezone
from prometheus_client import REGISTRY

from core.locks import JOBS, key_for
from core.models import OutboxEvent
from numbering import jobs
from numbering.lifecycle import State
from numbering.models import Lease, Number
from pools.models import Tenant
from tests.conftest import owner_dsn
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db


def _state(n: Number) -> str:
    return Number.objects.get(id=n.id).state


def _lease(n: Number) -> Lease:
    return Lease.objects.filter(number_id=n.id).order_by("-starts_at").first()


def _lease_ends_in(n: Number, delta: timedelta, **kw: Any) -> None:
    Lease.objects.filter(number_id=n.id, status="ACTIVE").update(expires_at=timezone.now() + delta, **kw)


def test_quarantine_sweep_releases_exactly_the_due_numbers_and_none_early(alice: Any) -> None:
    due = [number_in(State.QUARANTINED, alice, due=True) for _ in range(3)]
    not_yet = number_in(State.QUARANTINED, alice)
    Number.objects.filter(id=not_yet.id).update(quarantine_until=timezone.now() + timedelta(seconds=30))

    result = jobs.quarantine_sweep()

    assert result.count("released") == 3
    assert [_state(n) for n in due] == ["AVAILABLE"] * 3
    assert _state(not_yet) == "QUARANTINED"
    assert jobs.quarantine_sweep().counts == {}  # a second run finds nothing


def test_a_sweep_whose_clock_runs_ahead_still_never_ends_a_cool_off_early(alice: Any) -> None:
    """The selection uses the job's clock, the service's CAS the real one: a refusal is
    counted and the number stays QUARANTINED."""
    early = number_in(State.QUARANTINED, alice)
    Number.objects.filter(id=early.id).update(quarantine_until=timezone.now() + timedelta(hours=1))

    result = jobs.quarantine_sweep(now_fn=lambda: timezone.now() + timedelta(hours=2))

    assert result.counts == {"invalid_transition": 1}
    assert _state(early) == "QUARANTINED"


def test_renewal_renews_exactly_the_due_auto_renew_leases_of_active_tenants(alice: Any, bob: Any) -> None:
    due = number_in(State.ASSIGNED, alice)
    _lease_ends_in(due, timedelta(days=3))
    later = number_in(State.ASSIGNED, alice)
    _lease_ends_in(later, timedelta(days=20))
    manual = number_in(State.ASSIGNED, alice)
    _lease_ends_in(manual, timedelta(days=3), auto_renew=False)
    suspended = number_in(State.ASSIGNED, bob)
    _lease_ends_in(suspended, timedelta(days=3))
    Tenant.objects.filter(id=bob.id).update(status=Tenant.Status.SUSPENDED)
    before = {n.number: _lease(n).expires_at for n in (due, later, manual, suspended)}

    result = jobs.leases_auto_renew(window_days=7)

    assert result.counts == {"renewed": 1}
    renewed = _lease(due)
    assert renewed.renewals == 1 and renewed.expires_at == before[due.number] + timedelta(days=renewed.term_days)
    for n in (later, manual, suspended):
        assert _lease(n).expires_at == before[n.number] and _lease(n).renewals == 0
    assert OutboxEvent.objects.filter(aggregate_id=due.number, event_type="numbering.lease.renewed.v1").count() == 1
    assert jobs.leases_auto_renew(window_days=7).counts == {}  # renewed lease is now outside the window


def test_lease_expiry_quarantines_leases_past_expiry_and_leaves_live_ones(alice: Any, bob: Any) -> None:
    past = number_in(State.ASSIGNED, alice, due=True)
    past_suspended = number_in(State.ASSIGNED, bob, due=True)
    Tenant.objects.filter(id=bob.id).update(status=Tenant.Status.SUSPENDED)
    live = number_in(State.ASSIGNED, alice)

    result = jobs.leases_expire()

    assert result.counts == {"expired": 2}
    assert _state(past) == _state(past_suspended) == "QUARANTINED"
    assert _lease(past).status == "EXPIRED" and _lease(past).end_reason == "EXPIRED"
    assert _state(live) == "ASSIGNED"
    assert jobs.leases_expire().counts == {}


def test_safety_net_expires_overdue_reservations_and_reports_the_lag(alice: Any) -> None:
    overdue = number_in(State.RESERVED, alice)
    Number.objects.filter(id=overdue.id).update(reserved_until=timezone.now() - timedelta(seconds=40))
    live = number_in(State.RESERVED, alice)

    result = jobs.reservations_expire_overdue()

    assert result.counts == {"expired": 1}
    assert 39 <= REGISTRY.get_sample_value("numbering_reservation_cleanup_lag_seconds") < 60
    assert _state(overdue) == "AVAILABLE" and _state(live) == "RESERVED"
    assert jobs.reservations_expire_overdue().counts == {}
    assert REGISTRY.get_sample_value("numbering_reservation_cleanup_lag_seconds") == 0


def test_a_job_whose_lock_is_held_elsewhere_skips(alice: Any) -> None:
    number_in(State.QUARANTINED, alice, due=True)
    with psycopg.connect(owner_dsn(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [JOBS, key_for("quarantine_sweep")])
        result = jobs.quarantine_sweep()
    assert result.skipped and "skipped" in result.summary()


def test_job_commands_print_their_summary(alice: Any, capsys: Any) -> None:
    number_in(State.QUARANTINED, alice, due=True)
    for command, expected in (
        ("sweep_quarantine", "quarantine_sweep: released=1"),
        ("expire_overdue_reservations", "reservation_safety_net: nothing due"),
        ("expire_leases", "lease_expiry: nothing due"),
        ("renew_leases", "lease_auto_renewal: nothing due"),
        ("detect_anomalies", "anomaly_detector: signals=0"),
        ("check_pool_watermarks", "pool_watermarks: pools="),
    ):
        call_command(command)
        assert expected in capsys.readouterr().out
