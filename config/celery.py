"""The Celery app: Redis broker, the beat schedule of DESIGN §5 (in code, Asia/Kabul time).

Tasks are thin: each calls one job function, which is also a management command.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("numbering")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["numbering", "pools", "audit", "contracts", "exports"])

# Each run "expires" before the next one is due, so a stopped worker never finds a pile of
# stale runs when it comes back (the next run does the same work anyway).
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "reservation-safety-net": {
        "task": "numbering.tasks.reservation_safety_net",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "quarantine-sweep": {
        "task": "numbering.tasks.quarantine_sweep",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 240},
    },
    "lease-auto-renewal": {
        "task": "numbering.tasks.lease_auto_renewal",
        "schedule": crontab(minute=15, hour=1),
        "options": {"expires": 6 * 3600},
    },
    "lease-expiry": {
        "task": "numbering.tasks.lease_expiry",
        "schedule": crontab(minute=5),
        "options": {"expires": 3000},
    },
    "pool-watermarks": {
        "task": "pools.tasks.pool_watermarks",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 240},
    },
    "lease-cache-reconcile": {
        "task": "numbering.tasks.lease_cache_reconcile",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "anomaly-detector": {
        "task": "numbering.tasks.anomaly_detector",
        "schedule": crontab(),
        "options": {"expires": 50},
    },
    "idempotency-purge": {
        "task": "numbering.tasks.purge_idempotency_records",
        "schedule": crontab(minute=17),
        "options": {"expires": 3000},
    },
    # Terminated contracts (issue 16): retire, recall at the end date, warn tenants 30/7 days
    # before, days-to-end gauges. Hourly, so an end date is honoured within the hour.
    "contracts-enforce": {
        "task": "contracts.tasks.contracts_enforce",
        "schedule": crontab(minute=25),
        "options": {"expires": 3000},
    },
    "import-upload-purge": {
        "task": "contracts.tasks.purge_import_uploads",
        "schedule": crontab(minute=40, hour=3),
        "options": {"expires": 6 * 3600},
    },
    "audit-verify": {
        "task": "audit.tasks.audit_verify",
        "schedule": crontab(minute=30, hour=3),
        "options": {"expires": 6 * 3600},
    },
    # Monthly, after the archive CronJob (2nd, 05:00): the archived segments and every hot
    # event against every checkpoint (ADR 1630); the daily run above is incremental.
    "audit-verify-full": {
        "task": "audit.tasks.audit_verify",
        "schedule": crontab(minute=0, hour=6, day_of_month=3),
        "kwargs": {"full": True},
        "options": {"expires": 24 * 3600},
    },
    # Audit partitions (ADR 1630) are created and archived by Kubernetes CronJobs
    # (deploy/k8s/audit-partitions-cronjob.yaml): that DDL needs the table owner, whose
    # password no long-running process holds. The daily verify reports how far ahead they are.
    # Regulator export (DESIGN §7) of the previous month; idempotent, retries a FAILED month.
    "regulator-export": {
        "task": "exports.tasks.export_previous_month",
        "schedule": crontab(minute=0, hour=2, day_of_month=1),
        "options": {"expires": 12 * 3600},
    },
}
app.conf.beat_schedule = BEAT_SCHEDULE
app.conf.timezone = "Asia/Kabul"
app.conf.enable_utc = True


@signals.worker_init.connect
def _serve_worker_metrics(**_: Any) -> None:
    """Job gauges (cleanup lag, pool levels) are set in the worker: serve them."""
    from django.conf import settings
    from prometheus_client import start_http_server

    if settings.CELERY_WORKER_METRICS_PORT:
        start_http_server(settings.CELERY_WORKER_METRICS_PORT, addr=settings.METRICS_BIND_ADDRESS)


@signals.worker_process_init.connect
def _trace_worker_process(**_: Any) -> None:
    """Prefork children: set tracing up after the fork (the export thread must not be forked)."""
    from core.tracing import setup_tracing

    setup_tracing("celery")


@signals.worker_init.connect
def _trace_worker(sender: Any = None, **_: Any) -> None:
    """Threads/solo pools run tasks in this process (prefork is handled per child above)."""
    if "prefork" in str(getattr(sender, "pool_cls", "prefork")).lower():
        return
    from core.tracing import setup_tracing

    setup_tracing("celery")
