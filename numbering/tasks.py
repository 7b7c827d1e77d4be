"""Celery tasks: thin adapters over numbering.jobs / numbering.anomaly (DESIGN §5)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from core import idempotency
from numbering import anomaly, jobs


def _counts(result: jobs.JobResult) -> dict[str, Any]:
    return {"skipped": result.skipped, **result.counts, **result.extra}


@shared_task(name="numbering.tasks.reservation_safety_net")
def reservation_safety_net() -> dict[str, Any]:
    return _counts(jobs.reservations_expire_overdue())


@shared_task(name="numbering.tasks.quarantine_sweep")
def quarantine_sweep() -> dict[str, Any]:
    return _counts(jobs.quarantine_sweep())


@shared_task(name="numbering.tasks.lease_auto_renewal")
def lease_auto_renewal() -> dict[str, Any]:
    return _counts(jobs.leases_auto_renew())


@shared_task(name="numbering.tasks.lease_expiry")
def lease_expiry() -> dict[str, Any]:
    return _counts(jobs.leases_expire())


@shared_task(name="numbering.tasks.anomaly_detector")
def anomaly_detector() -> dict[str, Any]:
    result = anomaly.anomaly_detect()
    return {"skipped": result.skipped, "signals": len(result.signals)}


@shared_task(name="numbering.tasks.purge_idempotency_records")
def purge_idempotency_records() -> dict[str, Any]:
    return {"deleted": idempotency.purge_expired()}


@shared_task(name="numbering.tasks.lease_cache_reconcile")
def lease_cache_reconcile() -> dict[str, Any]:
    from numbering import cache_sync

    checked, divergent = cache_sync.reconcile()
    return {"checked": checked, "divergent": divergent}
