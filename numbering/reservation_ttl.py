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

from core import after_commit, redis_client
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


@dataclass
class _TtlKey:
    """The key and its entry in the deadlines set, in one pipeline: at once (write_ttl_key)
    or with the transaction's other after-commit writes (core.after_commit)."""

    number: str
    reservation_id: uuid.UUID | str
    reserved_until: datetime
    written: bool = False

    def stage(self, pipe: Pipeline) -> int:
        key = ttl_key(self.number, self.reservation_id)
        # PXAT: the deadline, or just ahead of now if it has passed.
        at_ms = max(int(self.reserved_until.timestamp() * 1000), int(time.time() * 1000) + 5)
        pipe.set(key, self.reserved_until.isoformat(), pxat=at_ms)
        pipe.zadd(deadlines_key(), {key: at_ms})
        return 2

    def finish(self, replies: list[Any]) -> None:
        error = next((r for r in replies if isinstance(r, Exception)), None)
        if error is not None:
            TTL_WRITES.labels("error").inc()
            log.warning(
                "reservation TTL key for %s not written (safety net covers it): %s", mask_number(self.number), error
            )
            return
        TTL_WRITES.labels("stored").inc()
        self.written = True


def write_ttl_key(number: str, reservation_id: uuid.UUID | str, reserved_until: datetime) -> bool:
    """Set the key to expire at reserved_until. Failures are logged and counted, never raised."""
    write = _TtlKey(number, reservation_id, reserved_until)
    after_commit.send([write])
    return write.written


def schedule_ttl_after_commit(number: str, reservation_id: uuid.UUID | str, reserved_until: datetime) -> None:
    """Called by number_reserve / number_extend_reservation inside their transaction."""
    after_commit.redis_after_commit(_TtlKey(number, reservation_id, reserved_until))


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
