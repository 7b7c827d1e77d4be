"""Reservation TTL keys in Redis (DESIGN §5, ADR 0603), written after commit.

One key per reservation, ``RESERVATION_TTL_PREFIX + "<number>|<reservation id>"``, expiring
at the reservation's ``reserved_until`` (PXAT, so a slow commit does not shift the
deadline). An extension rewrites the same key with the new deadline, so the old expiry
never fires. The expiry listener turns Redis' ``expired`` keyspace event into
``number_expire_reservation``; the 30 s safety net covers lost events and Redis outages.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime

import redis
from django.conf import settings
from django.db import transaction
from prometheus_client import Counter

from core.logging import mask_number

log = logging.getLogger(__name__)

TTL_WRITES = Counter("numbering_reservation_ttl_writes_total", "Reservation TTL keys written after commit", ["result"])

_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    return _client


def ttl_key(number: str, reservation_id: uuid.UUID | str) -> str:
    return f"{settings.RESERVATION_TTL_PREFIX}{number}|{reservation_id}"


def parse_key(key: str | bytes) -> tuple[str, str] | None:
    text = key.decode() if isinstance(key, bytes) else key
    if not text.startswith(settings.RESERVATION_TTL_PREFIX):
        return None
    number, sep, reservation_id = text[len(settings.RESERVATION_TTL_PREFIX) :].partition("|")
    if not sep or not number:
        return None
    try:
        uuid.UUID(reservation_id)
    except ValueError:
        return None
    return number, reservation_id


def deadlines_key() -> str:
    """Sorted set key → deadline (ms). Redis removes expired keys lazily or by sampling, so an
    expired event can come seconds late; the listener touches due keys from this set so that
    Redis expires them (and emits the event) on time."""
    return f"{settings.RESERVATION_TTL_PREFIX}deadlines"


def write_ttl_key(number: str, reservation_id: uuid.UUID | str, reserved_until: datetime) -> bool:
    """Set the key to expire at reserved_until. Failures are logged and counted, never raised."""
    at_ms = max(int(reserved_until.timestamp() * 1000), int(time.time() * 1000) + 5)
    key = ttl_key(number, reservation_id)
    try:
        pipe = client().pipeline(transaction=False)
        pipe.set(key, reserved_until.isoformat(), pxat=at_ms)
        pipe.zadd(deadlines_key(), {key: at_ms})
        pipe.execute()
    except redis.RedisError as exc:
        TTL_WRITES.labels("error").inc()
        log.warning("reservation TTL key for %s not written (safety net covers it): %s", mask_number(number), exc)
        return False
    TTL_WRITES.labels("stored").inc()
    return True


def schedule_ttl_after_commit(number: str, reservation_id: uuid.UUID | str, reserved_until: datetime) -> None:
    """Called by number_reserve / number_extend_reservation inside their transaction."""
    transaction.on_commit(lambda: write_ttl_key(number, reservation_id, reserved_until))


def touch_due_keys(r: redis.Redis, *, now_ms: int | None = None, limit: int = 500) -> int:
    """Touch every key whose deadline has passed so Redis expires it now (lazy expiry on
    access fires the keyspace event); forget the ones that are gone. Returns keys touched."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    due: list[bytes] = list(r.zrangebyscore(deadlines_key(), 0, now_ms - 1, start=0, num=limit))  # type: ignore[arg-type]
    if not due:
        return 0
    pipe = r.pipeline(transaction=False)
    for key in due:
        pipe.exists(key)
    exists = pipe.execute()
    gone = [key for key, present in zip(due, exists, strict=True) if not present]
    if gone:
        r.zrem(deadlines_key(), *gone)
    # A key still present was extended after its ZADD was read: its new score is in the future
    # unless the key's TTL was removed; drop entries older than a minute in any case.
    r.zremrangebyscore(deadlines_key(), 0, now_ms - 60_000)
    return len(due)


def prune_deadlines(max_age_ms: int = 60_000) -> None:
    """Forget deadlines long past (the listener was not running to touch them)."""
    try:
        client().zremrangebyscore(deadlines_key(), 0, int(time.time() * 1000) - max_age_ms)
    except redis.RedisError as exc:
        log.warning("reservation deadlines not pruned: %s", exc)
