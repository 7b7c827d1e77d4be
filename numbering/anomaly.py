"""Anomaly detector (DESIGN §5): WRONG_TENANT bursts, CONFLICT spikes, reserve/release churn
→ `fraud.signals.numbering.v1` through the outbox.

Per-minute counters live in Redis under ``numbering:anomaly:<kind>:<tenant_id>:<unix_minute>``
(1 h expiry): the gRPC ValidateLease path INCRs the wrong_tenant keys, and API adapters call
``record_conflict`` for every CONFLICT answer. Churn is read from the audit trail. A signal is
raised once per (kind, tenant, window): the AnomalySignal row's unique constraint decides,
so two detectors running at once raise it once.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from prometheus_client import Counter

from audit.models import AuditEvent
from core import clock, redis_client
from core.locks import job_lock
from core.outbox import outbox_enqueue

log = logging.getLogger(__name__)

SIGNAL_EVENT = "fraud.signals.numbering.v1"
LOOKBACK_MINUTES = 5  # per-minute counters re-checked each run (catches up after a missed run)
SIGNALS = Counter("numbering_fraud_signals_total", "Fraud signals raised by the anomaly detector", ["kind"])

WRONG_TENANT_BURST = "WRONG_TENANT_BURST"
CONFLICT_SPIKE = "CONFLICT_SPIKE"
RESERVE_RELEASE_CHURN = "RESERVE_RELEASE_CHURN"


def client() -> redis.Redis:
    # The detector SCANs counters: a longer timeout than the request path's writes.
    return redis_client.client(timeout=2.0)


counter_key = redis_client.anomaly_key


def _record(kind: str, tenant_id: uuid.UUID | str, at: float | None = None) -> None:
    key = counter_key(kind, tenant_id, int((at if at is not None else time.time()) // 60))
    try:
        pipe = client().pipeline()
        pipe.incr(key)
        pipe.expire(key, redis_client.ANOMALY_COUNTER_TTL_SECONDS)
        pipe.execute()
    except redis.RedisError as exc:  # a counter must never fail the request that fed it
        log.warning("anomaly counter %s not recorded: %s", kind, exc)


def record_wrong_tenant(tenant_id: uuid.UUID | str, at: float | None = None) -> None:
    _record("wrong_tenant", tenant_id, at)


def record_conflict(tenant_id: uuid.UUID | str, at: float | None = None) -> None:
    _record("conflict", tenant_id, at)


@dataclass
class DetectResult:
    skipped: bool = False
    signals: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        if self.skipped:
            return "anomaly_detector: skipped (another run holds the lock)"
        return f"anomaly_detector: signals={len(self.signals)}"


def _minute_counts(kind: str, first_minute: int, last_minute: int) -> list[tuple[str, int, int]]:
    """(tenant_id, unix_minute, count) for every counter of `kind` in the minute range."""
    found = []
    r = client()
    keys = list(r.scan_iter(match=redis_client.anomaly_pattern(kind), count=1000))
    values = r.mget(keys) if keys else []
    for raw_key, raw_value in zip(keys, values, strict=True):
        parts = raw_key.decode().rsplit(":", 2)
        try:
            tenant, minute, count = str(uuid.UUID(parts[-2])), int(parts[-1]), int(raw_value or 0)
        except (ValueError, IndexError):
            log.warning("anomaly detector: ignoring malformed key %r", raw_key)
            continue
        if first_minute <= minute <= last_minute:
            found.append((tenant, minute, count))
    return found


def _raise(
    kind: str, tenant_id: str, window_start: datetime, window_end: datetime, count: int, threshold: int
) -> dict[str, Any] | None:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO numbering_anomalysignal (kind, subject, window_start, count, created_at)"
                " VALUES (%s, %s, %s, %s, now()) ON CONFLICT (kind, subject, window_start) DO NOTHING RETURNING id",
                [kind, tenant_id, window_start, count],
            )
            if cursor.fetchone() is None:
                return None
        data = {
            "signal": kind,
            "tenant_id": tenant_id,
            "count": count,
            "threshold": threshold,
            "window_start": window_start.isoformat(),
            "window_end": window_end.isoformat(),
        }
        outbox_enqueue(event_type=SIGNAL_EVENT, aggregate_id=f"tenant:{tenant_id}", tenant_id=tenant_id, data=data)
    SIGNALS.labels(kind).inc()
    log.warning("fraud signal %s for tenant %s: %d in window from %s", kind, tenant_id, count, window_start.isoformat())
    return data


def anomaly_detect(*, now: datetime | None = None) -> DetectResult:
    result = DetectResult()
    with job_lock("anomaly_detector") as acquired:
        if not acquired:
            result.skipped = True
            return result
        now = now or clock.now()
        minute_now = int(now.timestamp() // 60)
        for kind, signal, threshold in (
            ("wrong_tenant", WRONG_TENANT_BURST, settings.ANOMALY_WRONG_TENANT_PER_MINUTE),
            ("conflict", CONFLICT_SPIKE, settings.ANOMALY_CONFLICT_PER_MINUTE),
        ):
            try:
                rows = _minute_counts(kind, minute_now - LOOKBACK_MINUTES, minute_now)
            except redis.RedisError as exc:
                log.warning("anomaly detector: Redis unavailable, %s not checked: %s", kind, exc)
                continue
            for tenant, minute, count in rows:
                if count >= threshold:
                    start = datetime.fromtimestamp(minute * 60, tz=UTC)
                    raised = _raise(signal, tenant, start, start + timedelta(minutes=1), count, threshold)
                    if raised:
                        result.signals.append(raised)
        # Reserve/release churn per tenant in the current fixed window (from the audit trail).
        width = settings.ANOMALY_CHURN_WINDOW_MINUTES * 60
        start = datetime.fromtimestamp((int(now.timestamp()) // width) * width, tz=UTC)
        churn = (
            AuditEvent.objects.filter(
                occurred_at__gte=start, occurred_at__lte=now, action__in=["reserve", "release"], tenant_id__isnull=False
            )
            .values("tenant_id")
            .annotate(n=Count("id"))
            .values_list("tenant_id", "n")
        )
        for tenant_id, count in churn:
            if count >= settings.ANOMALY_CHURN_PER_WINDOW:
                raised = _raise(
                    RESERVE_RELEASE_CHURN,
                    str(tenant_id),
                    start,
                    start + timedelta(seconds=width),
                    count,
                    settings.ANOMALY_CHURN_PER_WINDOW,
                )
                if raised:
                    result.signals.append(raised)
    log.info("%s", result.summary())
    return result
