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

from config.logging import mask_number

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


def write_ttl_key(number: str, reservation_id: uuid.UUID | str, reserved_until: datetime) -> bool:
    """Set the key to expire at reserved_until. Failures are logged and counted, never raised."""
    at_ms = max(int(reserved_until.timestamp() * 1000), int(time.time() * 1000) + 5)
    try:
        client().set(ttl_key(number, reservation_id), reserved_until.isoformat(), pxat=at_ms)
    except redis.RedisError as exc:
        TTL_WRITES.labels("error").inc()
        log.warning("reservation TTL key for %s not written (safety net covers it): %s", mask_number(number), exc)
        return False
    TTL_WRITES.labels("stored").inc()
    return True


def schedule_ttl_after_commit(number: str, reservation_id: uuid.UUID | str, reserved_until: datetime) -> None:
    """Called by number_reserve / number_extend_reservation inside their transaction."""
    transaction.on_commit(lambda: write_ttl_key(number, reservation_id, reserved_until))
