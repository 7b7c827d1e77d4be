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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from prometheus_client import Counter
from redis.client import Pipeline

from core import redis_client
from core.after_commit import redis_after_commit
from core.logging import mask_number

log = logging.getLogger(__name__)

TTL_WRITES = Counter("numbering_reservation_ttl_writes_total", "Reservation TTL keys written after commit", ["result"])

# Keys live in core.redis_client. The deadlines sorted set maps key → deadline (ms): Redis
# removes expired keys lazily or by sampling, so an expired event can come seconds late;
# the listener touches due keys from that set so that Redis expires them on time.
client = redis_client.client
ttl_key = redis_client.reservation_ttl_key
parse_key = redis_client.parse_reservation_ttl_key
deadlines_key = redis_client.reservation_deadlines_key


def _at_ms(reserved_until: datetime) -> int:
    """The key's expiry (PXAT): the deadline, or just ahead of now if it has passed."""
    return max(int(reserved_until.timestamp() * 1000), int(time.time() * 1000) + 5)


def _stage(pipe: Pipeline, key: str, reserved_until: datetime) -> int:
    at_ms = _at_ms(reserved_until)
    pipe.set(key, reserved_until.isoformat(), pxat=at_ms)
    pipe.zadd(deadlines_key(), {key: at_ms})
    return 2


def _written(number: str, error: Exception | None) -> bool:
    if error is not None:
        TTL_WRITES.labels("error").inc()
        log.warning("reservation TTL key for %s not written (safety net covers it): %s", mask_number(number), error)
        return False
    TTL_WRITES.labels("stored").inc()
    return True


def write_ttl_key(number: str, reservation_id: uuid.UUID | str, reserved_until: datetime) -> bool:
    """Set the key to expire at reserved_until. Failures are logged and counted, never raised."""
    try:
        pipe = client().pipeline(transaction=False)
        _stage(pipe, ttl_key(number, reservation_id), reserved_until)
        pipe.execute()
    except redis.RedisError as exc:
        return _written(number, exc)
    return _written(number, None)


@dataclass
class _TtlAfterCommit:
    """The key, sent with the transaction's other after-commit writes (core.after_commit)."""

    number: str
    reservation_id: uuid.UUID | str
    reserved_until: datetime

    def stage(self, pipe: Pipeline) -> int:
        return _stage(pipe, ttl_key(self.number, self.reservation_id), self.reserved_until)

    def finish(self, replies: list[Any]) -> None:
        _written(self.number, next((r for r in replies if isinstance(r, Exception)), None))


def schedule_ttl_after_commit(number: str, reservation_id: uuid.UUID | str, reserved_until: datetime) -> None:
    """Called by number_reserve / number_extend_reservation inside their transaction."""
    redis_after_commit(_TtlAfterCommit(number, reservation_id, reserved_until))


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
