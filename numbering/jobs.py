"""Scheduled sweeps over the number inventory (DESIGN §5).

Each job finds its due rows, then changes every one through its service function
(numbering.services), which re-checks the guard in its compare-and-set: a job run twice
at once, or racing a user, can never act early or twice. A PostgreSQL advisory lock
(core.locks) keeps two overlapping runs from doing the same work twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from prometheus_client import Counter, Gauge

from core import clock, errors
from core.actors import Actor
from core.locks import job_lock
from core.logging import mask_number
from core.rls import rls_scope
from numbering import reservation_ttl, services
from numbering.lifecycle import State
from numbering.models import Lease, Number
from pools.models import Tenant

log = logging.getLogger(__name__)

# The label is `job_name`, not `job`: Prometheus owns `job` (the scrape job) and renames an
# exported `job` to `exported_job`, so a rule filtering on {job="lease_auto_renewal"} could never
# match (issue 15: NumberingRenewalFailureSpike could not fire).
JOB_RESULTS = Counter("numbering_job_items_total", "Items handled by scheduled jobs", ["job_name", "result"])
JOB_SKIPPED = Counter("numbering_job_skipped_total", "Job runs skipped because another run held the lock", ["job_name"])
CLEANUP_LAG = Gauge(
    "numbering_reservation_cleanup_lag_seconds",
    "How far past reserved_until the oldest RESERVED number was when the safety net ran (0 = none overdue)",
)
QUARANTINE_BACKLOG = Gauge(
    "numbering_quarantine_backlog", "QUARANTINED numbers past quarantine_until still waiting after the sweep"
)
QUARANTINE_BACKLOG_OLDEST = Gauge(
    "numbering_quarantine_backlog_oldest_seconds", "How long the oldest due quarantined number has waited (0 = none)"
)
RESERVATIONS_EXPIRED = Counter(
    "numbering_reservations_expired_total", "Reservations expired, by the path that expired them", ["path"]
)

MAX_BATCHES = 100  # one run handles at most MAX_BATCHES * SWEEP_BATCH rows; the next run goes on


@dataclass
class JobResult:
    job: str
    skipped: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, result: str, n: int = 1) -> None:
        self.counts[result] = self.counts.get(result, 0) + n
        JOB_RESULTS.labels(self.job, result).inc(n)

    def count(self, result: str) -> int:
        return self.counts.get(result, 0)

    def summary(self) -> str:
        if self.skipped:
            return f"{self.job}: skipped (another run holds the lock)"
        parts = [f"{k}={v}" for k, v in sorted(self.counts.items())] or ["nothing due"]
        parts += [f"{k}={v}" for k, v in sorted(self.extra.items())]
        return f"{self.job}: " + ", ".join(parts)


def platform_read(fn: Callable[[], Any]) -> Any:
    """Run a read in the platform RLS scope (jobs see every tenant's rows)."""
    with transaction.atomic(), rls_scope(platform=True):
        return fn()


def _sweep(
    job: str,
    select: Callable[[], list[tuple[str, Any]]],
    act: Callable[[str, Any], object],
    result: JobResult,
    done: str,
) -> JobResult:
    """Repeatedly select a batch of due rows and act on each; a row that fails is counted
    and left for the next run (it is excluded from later batches of this run)."""
    failed: set[str] = set()
    for _ in range(MAX_BATCHES):
        batch = [(n, extra) for n, extra in select() if n not in failed]
        if not batch:
            break
        for number, extra in batch:
            try:
                act(number, extra)
            except errors.DomainError as exc:
                failed.add(number)
                result.add(exc.code.lower())
                log.info("%s: %s not changed: %s", job, mask_number(number), exc.code)
            else:
                result.add(done)
    return result


def _run_job(job: str, body: Callable[[JobResult], JobResult]) -> JobResult:
    result = JobResult(job)
    with job_lock(job) as acquired:
        if not acquired:
            JOB_SKIPPED.labels(job).inc()
            result.skipped = True
            return result
        body(result)
    log.info("%s", result.summary())
    return result


# --- reservation safety net -------------------------------------------------------------


def reservations_expire_overdue(*, now_fn: Callable[[], Any] = clock.now) -> JobResult:
    """Expire every RESERVED number past reserved_until (what the listener missed)."""
    job = "reservation_safety_net"

    def body(result: JobResult) -> JobResult:
        def oldest() -> Any:
            return (
                Number.objects.filter(state=State.RESERVED, reserved_until__lte=now_fn())
                .order_by("reserved_until")
                .values_list("reserved_until", flat=True)
                .first()
            )

        first_due = platform_read(oldest)
        lag = (now_fn() - first_due).total_seconds() if first_due else 0.0
        CLEANUP_LAG.set(max(lag, 0.0))
        result.extra["lag_seconds"] = round(max(lag, 0.0), 3)

        def select() -> list[tuple[str, Any]]:
            return platform_read(
                lambda: list(
                    Number.objects.filter(state=State.RESERVED, reserved_until__lte=now_fn())
                    .order_by("reserved_until")
                    .values_list("number", "id")[: settings.SWEEP_BATCH]
                )
            )

        def act(number: str, _: Any) -> None:
            services.number_expire_reservation(number=number, actor=Actor.system("reservation-safety-net"))
            RESERVATIONS_EXPIRED.labels("safety_net").inc()

        _sweep(job, select, act, result, "expired")
        reservation_ttl.prune_deadlines()
        return result

    return _run_job(job, body)


# --- quarantine sweep --------------------------------------------------------------------


def quarantine_sweep(*, now_fn: Callable[[], Any] = clock.now) -> JobResult:
    """QUARANTINED numbers whose quarantine_until has passed → AVAILABLE. Never early: the
    selection and the service's CAS both require quarantine_until ≤ now."""
    job = "quarantine_sweep"

    def body(result: JobResult) -> JobResult:
        def select() -> list[tuple[str, Any]]:
            return platform_read(
                lambda: list(
                    Number.objects.filter(state=State.QUARANTINED, quarantine_until__lte=now_fn())
                    .order_by("quarantine_until")
                    .values_list("number", "id")[: settings.SWEEP_BATCH]
                )
            )

        _sweep(
            job,
            select,
            lambda number, _: services.number_end_quarantine(number=number, actor=Actor.system("quarantine-sweep")),
            result,
            "released",
        )
        # What is still due after the sweep: a backlog that does not drain is alerted on.
        now = now_fn()
        due = platform_read(
            lambda: Number.objects.filter(state=State.QUARANTINED, quarantine_until__lte=now).order_by(
                "quarantine_until"
            )
        )
        oldest = platform_read(lambda: due.values_list("quarantine_until", flat=True).first())
        QUARANTINE_BACKLOG.set(platform_read(due.count))
        QUARANTINE_BACKLOG_OLDEST.set((now - oldest).total_seconds() if oldest else 0.0)
        return result

    return _run_job(job, body)


# --- leases ------------------------------------------------------------------------------


def leases_auto_renew(*, window_days: int | None = None, now_fn: Callable[[], Any] = clock.now) -> JobResult:
    """Renew ACTIVE auto-renew leases that end within the renewal window, for ACTIVE
    tenants only. Each renewal names the version it saw, so a lease is never renewed
    twice for one due date even by two runs at once."""
    job = "lease_auto_renewal"
    window = timedelta(days=window_days if window_days is not None else settings.LEASE_RENEWAL_WINDOW_DAYS)

    def body(result: JobResult) -> JobResult:
        def select() -> list[tuple[str, Any]]:
            now = now_fn()
            return platform_read(
                lambda: list(
                    Lease.objects.filter(
                        status=Lease.Status.ACTIVE,
                        auto_renew=True,
                        expires_at__gt=now,
                        expires_at__lte=now + window,
                        tenant__status=Tenant.Status.ACTIVE,
                        number__state=State.ASSIGNED,
                    )
                    .order_by("expires_at")
                    .values_list("number__number", "number__version")[: settings.SWEEP_BATCH]
                )
            )

        def act(number: str, version: int) -> None:
            services.number_renew(number=number, actor=Actor.system("lease-renewal"), expected_version=version)

        return _sweep(job, select, act, result, "renewed")

    return _run_job(job, body)


def leases_expire(*, now_fn: Callable[[], Any] = clock.now) -> JobResult:
    """ACTIVE leases past expires_at (not renewed in time) → the number is QUARANTINED."""
    job = "lease_expiry"

    def body(result: JobResult) -> JobResult:
        def select() -> list[tuple[str, Any]]:
            return platform_read(
                lambda: list(
                    Lease.objects.filter(
                        status=Lease.Status.ACTIVE, expires_at__lte=now_fn(), number__state=State.ASSIGNED
                    )
                    .order_by("expires_at")
                    .values_list("number__number", "id")[: settings.SWEEP_BATCH]
                )
            )

        return _sweep(
            job,
            select,
            lambda number, _: services.number_expire_lease(number=number, actor=Actor.system("lease-expiry")),
            result,
            "expired",
        )

    return _run_job(job, body)


# --- compliance recall -------------------------------------------------------------------


def tenant_recall_all(
    *,
    tenant_id: Any,
    reason: str,
    actor: Actor,
    batch: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> JobResult:
    """Recall every RESERVED/ASSIGNED number of a tenant with the compliance cool-off, one
    transaction per batch (a crash leaves whole batches; a rerun recalls what is left)."""
    size = batch or settings.EVENT_RECALL_BATCH
    result = JobResult("tenant_recall")
    failed: set[str] = set()
    while True:
        numbers = [
            n
            for n in platform_read(
                lambda: list(
                    Number.objects.filter(tenant_id=tenant_id, state__in=[State.RESERVED, State.ASSIGNED])
                    .order_by("id")
                    .values_list("number", flat=True)[: size + len(failed)]
                )
            )
            if n not in failed
        ][:size]
        if not numbers:
            break
        with transaction.atomic():
            for number in numbers:
                try:
                    with transaction.atomic():
                        services.number_recall(number=number, actor=actor, reason=reason, compliance=True)
                except errors.DomainError as exc:
                    failed.add(number)
                    result.add(exc.code.lower())
                else:
                    result.add("recalled")
        if on_batch:
            on_batch(len(numbers))
    return result
