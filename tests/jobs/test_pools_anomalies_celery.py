"""Pool watermarks, the anomaly detector, tenant marking and the Celery wiring."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.models import AuditEvent
from core import errors
from core.actors import Actor
from core.models import OutboxEvent
from numbering import anomaly, services
from numbering.lifecycle import State
from numbering.models import AnomalySignal
from pools.models import InventoryPool, PoolWatermarkState, Tenant
from pools.services import pool_watermarks_check, tenant_set_status
from tests.factories import InventoryPoolFactory, NumberFactory
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db


def _exhaustion_events() -> list[dict[str, Any]]:
    return [
        e.envelope["data"]
        for e in OutboxEvent.objects.filter(event_type="numbering.pool.exhaustion.v1", aggregate_id="pool:SMALL_POOL")
    ]


def _levels(result: Any) -> list[str]:
    return [c["level"] for c in result.crossings if c["pool"] == "SMALL_POOL"]


def test_watermark_event_fires_once_per_crossing_not_every_run(alice: Any) -> None:
    pool = InventoryPoolFactory(code="SMALL_POOL", low_watermark=4, critical_watermark=2)
    numbers = [NumberFactory(pool=pool) for _ in range(3)]

    first = pool_watermarks_check()
    assert ("SMALL_POOL", "OK", "LOW") in [(c["pool"], c["previous_level"], c["level"]) for c in first.crossings]
    assert REGISTRY.get_sample_value("numbering_pool_available_numbers", {"pool": "SMALL_POOL", "kind": "MSISDN"}) == 3
    assert _levels(pool_watermarks_check()) == []  # same level: no second event
    assert len(_exhaustion_events()) == 1

    InventoryPool.objects.filter(id=pool.id).update(critical_watermark=3)  # now 3 < 3 is false → still LOW
    for n in numbers[:2]:
        alice.tenant_pool.inventory_pools.add(pool)
        services.number_reserve(number=n.number, tenant_id=alice.id, actor=Actor.system("test"))
    assert _levels(pool_watermarks_check()) == ["CRITICAL"]
    services.number_reserve(number=numbers[2].number, tenant_id=alice.id, actor=Actor.system("test"))
    assert _levels(pool_watermarks_check()) == ["EXHAUSTED"]
    assert REGISTRY.get_sample_value("numbering_pool_watermark_level", {"pool": "SMALL_POOL", "kind": "MSISDN"}) == 3
    assert [e["level"] for e in _exhaustion_events()] == ["LOW", "CRITICAL", "EXHAUSTED"]
    assert PoolWatermarkState.objects.get(pool=pool).level == "EXHAUSTED"
    event = OutboxEvent.objects.filter(aggregate_id="pool:SMALL_POOL").last()
    assert event.aggregate_id == "pool:SMALL_POOL" and event.envelope["data"]["available"] == 0


def test_wrong_tenant_burst_raises_one_signal_per_tenant_and_minute(alice: Any, bob: Any, settings: Any) -> None:
    settings.ANOMALY_WRONG_TENANT_PER_MINUTE = 5
    now = time.time()
    for _ in range(5):
        anomaly.record_wrong_tenant(alice.id, at=now)
    for _ in range(4):
        anomaly.record_wrong_tenant(bob.id, at=now)  # below the threshold
    anomaly.client().set(anomaly.counter_key("wrong_tenant", "not-a-uuid", 1), 99)  # ignored, not fatal

    result = anomaly.anomaly_detect()

    assert [(s["signal"], s["tenant_id"], s["count"]) for s in result.signals] == [
        ("WRONG_TENANT_BURST", str(alice.id), 5)
    ]
    event = OutboxEvent.objects.get(event_type="fraud.signals.numbering.v1")
    assert event.subject == "fraud.signals.numbering.v1" and event.envelope["tenant_id"] == str(alice.id)
    assert anomaly.anomaly_detect().signals == []  # the same burst is not raised again
    assert AnomalySignal.objects.count() == 1


def test_conflict_spike_and_reserve_release_churn_raise_signals(alice: Any, bob: Any, settings: Any) -> None:
    settings.ANOMALY_CONFLICT_PER_MINUTE = 3
    settings.ANOMALY_CHURN_PER_WINDOW = 6
    for _ in range(3):
        anomaly.record_conflict(bob.id)
    n = number_in(State.AVAILABLE, alice)
    for _ in range(3):  # 3 reserves + 3 releases by alice
        services.number_reserve(number=n.number, tenant_id=alice.id, actor=Actor.system("test"))
        services.number_release(number=n.number, tenant_id=alice.id, actor=Actor.system("test"))

    kinds = {(s["signal"], s["tenant_id"]) for s in anomaly.anomaly_detect(now=timezone.now()).signals}

    assert kinds == {("CONFLICT_SPIKE", str(bob.id)), ("RESERVE_RELEASE_CHURN", str(alice.id))}
    assert anomaly.anomaly_detect().signals == []


def test_tenant_status_change_is_audited_and_never_undeletes(alice: Any) -> None:
    actor = Actor.system("compliance-consumer")
    assert tenant_set_status(tenant_id=alice.id, status="SUSPENDED", actor=actor, reason="KYC") is True
    assert tenant_set_status(tenant_id=alice.id, status="SUSPENDED", actor=actor) is False
    assert tenant_set_status(tenant_id=alice.id, status="DELETED", actor=actor) is True
    assert tenant_set_status(tenant_id=alice.id, status="SUSPENDED", actor=actor) is False
    assert Tenant.objects.get(id=alice.id).status == "DELETED"
    trail = list(AuditEvent.objects.filter(object_type="tenant", object_id=str(alice.id)).order_by("id"))
    assert [(e.action, e.before, e.after["status"]) for e in trail] == [
        ("tenant_suspended", {"status": "ACTIVE"}, "SUSPENDED"),
        ("tenant_deleted", {"status": "SUSPENDED"}, "DELETED"),
    ]
    with pytest.raises(errors.ValidationError, match="status"):
        tenant_set_status(tenant_id=alice.id, status="ACTIVE", actor=actor)
    with pytest.raises(errors.TenantNotFound):
        tenant_set_status(tenant_id="00000000-0000-0000-0000-000000000000", status="DELETED", actor=actor)


def test_beat_schedule_covers_every_job_of_design_section_5_in_kabul_time() -> None:
    from config.celery import app

    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    assert app.conf.timezone == "Asia/Kabul"
    assert set(schedule) == {
        "reservation-safety-net",
        "quarantine-sweep",
        "lease-auto-renewal",
        "lease-expiry",
        "pool-watermarks",
        "anomaly-detector",
        "audit-verify",
        "regulator-export",
        "idempotency-purge",
        "lease-cache-reconcile",  # ADR 1200
        "contracts-enforce",  # issue 16, ADR 1611
        "import-upload-purge",  # ADR 1354
        "audit-verify-full",  # ADR 1630 (partitions and archive are CronJobs: they need the owner)
    }
    assert schedule["audit-verify-full"]["kwargs"] == {"full": True}
    assert schedule["reservation-safety-net"]["schedule"] == 30.0
    export = schedule["regulator-export"]["schedule"]
    assert export.day_of_month == {1} and export.hour == {2} and export.minute == {0}
    app.loader.import_default_modules()
    assert {e["task"] for e in schedule.values()} <= set(app.tasks)


def test_no_task_outlives_the_brokers_visibility_timeout_and_redelivered_tasks_are_idempotent() -> None:
    """ADR 1502: a task not acknowledged within the visibility timeout is delivered again.
    Only idempotent tasks may be acknowledged late, every retry countdown stays below the
    timeout, and the broker looks for such tasks every 10 s."""
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()
    options = app.conf.broker_transport_options
    timeout = settings.CELERY_VISIBILITY_TIMEOUT
    assert options["visibility_timeout"] == timeout == 900
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 10
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    # Idempotent by construction (contracts/imports/run.py: a committed import is final).
    assert {name for name, task in ours.items() if task.acks_late} == {"contracts.run_import"}
    for name, task in ours.items():
        if getattr(task, "autoretry_for", ()):
            assert task.retry_backoff_max < timeout, name
            assert (task.default_retry_delay or 0) < timeout, name


def test_tasks_are_thin_adapters_returning_the_job_counts(alice: Any) -> None:
    from audit.tasks import audit_verify
    from numbering import tasks
    from pools.tasks import pool_watermarks

    number_in(State.QUARANTINED, alice, due=True)
    assert tasks.quarantine_sweep.apply().get() == {"skipped": False, "released": 1}
    assert tasks.reservation_safety_net.apply().get() == {"skipped": False, "lag_seconds": 0.0}
    assert tasks.lease_auto_renewal.apply().get() == {"skipped": False}
    assert tasks.lease_expiry.apply().get() == {"skipped": False}
    assert tasks.anomaly_detector.apply().get() == {"skipped": False, "signals": 0}
    assert pool_watermarks.apply().get()["crossings"] == 1  # GENERAL_MSISDN: 0 → CRITICAL
    assert pool_watermarks.apply().get()["crossings"] == 0
    verified = audit_verify.apply().get()
    assert verified["ok"] is True and verified["verified"] > 0
    assert REGISTRY.get_sample_value("numbering_audit_chain_breaks") == 0
