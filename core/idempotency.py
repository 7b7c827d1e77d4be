"""Idempotency keys (DESIGN §2.3): scope = caller identity + key, stored in PostgreSQL in
the mutation's own transaction.

`run()` is the one entry point every mutating service uses (numbering actions, batch
reserve, leases, contracts, signing keys, REST views that wrap a service):

    outcome = idempotency.run(scope=actor.identity, key=key, request=fingerprint, produce=do_it)
    outcome.response  # the first response, byte-for-byte the same on every replay
    outcome.replayed  # True when this call was a replay and `produce` did not run

claim() inserts the key first. A concurrent duplicate blocks on the unique index until
the first transaction ends: if it committed, the duplicate reads the stored response;
if it rolled back, the duplicate's insert goes through and it does the work itself.
Either way there is exactly one effect. Refusals are not stored, so a retry after an
error runs again.

Redis fronts the table (DESIGN §2.3): after commit the response is copied to Redis for
the key's lifetime, so a replay is answered without reading the table. Redis is
only a shortcut: when it is down or evicted the PostgreSQL record answers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from redis.client import Pipeline

from core import clock, redis_client, sqlbatch
from core.after_commit import redis_after_commit
from core.errors import IdempotencyKeyReused, ValidationError
from core.models import IdempotencyRecord

MAX_KEY_LENGTH = 200


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def request_hash(request: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(request).encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    response: dict[str, Any]
    replayed: bool


def run(
    *,
    scope: str,
    key: str | None,
    request: dict[str, Any],
    produce: Callable[[], dict[str, Any]],
    deferred: list[sqlbatch.Fragment] | None = None,
) -> Outcome:
    """Run `produce` once per (scope, key, request). Call it inside the mutation's
    transaction: the claim, the change and the stored response commit or roll back
    together, so a refusal (an exception from `produce`) leaves the key unused and a
    retry after an unknown outcome either replays the committed response or does the
    work once. Without a key, `produce` just runs. The same key with another request is
    IDEMPOTENCY_KEY_REUSED.

    `deferred`: writes `produce` leaves for the end (the audit event, the outbox row; it
    fills the list while it runs). They go out in one statement with the stored response
    (ADR 1100), so a mutation's tail is one round trip."""
    deferred = [] if deferred is None else deferred
    if not key:
        response = produce()
        sqlbatch.execute(deferred)
        return Outcome(response, replayed=False)
    if not connection.in_atomic_block:
        raise RuntimeError("idempotency.run must be called inside the mutation's transaction")
    replay = _cached_replay(scope=scope, key=key, request=request)
    if replay is None:
        replay = _claim(scope=scope, key=key, request=request)
    if replay is not None:
        return Outcome(json.loads(replay), replayed=True)
    response = produce()
    return Outcome(json.loads(_store(scope=scope, key=key, response=response, deferred=deferred)), replayed=False)


def check_key(key: str) -> None:
    """The one rule for a key's shape (REST header, gRPC field or metadata)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"idempotency_key: must be 1-{MAX_KEY_LENGTH} characters", field="idempotency_key")


def _reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused("idempotency_key was already used with a different request", field="idempotency_key")


def _cached_replay(*, scope: str, key: str, request: dict[str, Any]) -> str | None:
    """The stored response from Redis, or None (not cached, or Redis unavailable)."""
    check_key(key)
    try:
        raw = redis_client.client().get(redis_client.idempotency_key(scope, key))
    except redis.RedisError:
        return None
    if raw is None:
        return None
    digest, _, response = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition("|")
    if digest != request_hash(request):
        raise _reused()
    return response


def _claim(*, scope: str, key: str, request: dict[str, Any]) -> str | None:
    """Reserve `key` for this request. Returns the stored response JSON on a replay,
    None when the caller should do the work (and then call `store`)."""
    check_key(key)
    digest = request_hash(request)
    now = clock.now()
    with connection.cursor() as cursor:
        # A key is remembered for IDEMPOTENCY_TTL_SECONDS; after that it may be used afresh:
        # an expired record is taken over in the same statement (one round trip).
        cursor.execute(
            "INSERT INTO numbering_idempotencyrecord AS r (scope, key, request_hash, response, created_at, expires_at)"
            " VALUES (%s, %s, %s, '', %s, %s) ON CONFLICT (scope, key) DO UPDATE SET"
            " request_hash = EXCLUDED.request_hash, response = '', created_at = EXCLUDED.created_at,"
            " expires_at = EXCLUDED.expires_at WHERE r.expires_at <= %s RETURNING id",
            [scope, key, digest, now, now + timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS), now],
        )
        if cursor.fetchone() is not None:
            return None
    record = IdempotencyRecord.objects.get(scope=scope, key=key)
    if record.request_hash != digest:
        raise _reused()
    return record.response


def _store(*, scope: str, key: str, response: dict[str, Any], deferred: list[sqlbatch.Fragment]) -> str:
    """Record the response of the claimed key (with the caller's deferred writes, one
    statement); Redis gets a copy once the transaction commits."""
    text = canonical(response)
    values = sqlbatch.execute(
        [
            *deferred,
            sqlbatch.Fragment(
                "UPDATE numbering_idempotencyrecord SET response = %s WHERE scope = %s AND key = %s"
                " RETURNING request_hash",
                [text, scope, key],
                select="(SELECT request_hash FROM {cte})",
            ),
        ]
    )
    digest = values[-1]
    if digest is not None:
        redis_after_commit(_Remember(redis_client.idempotency_key(scope, key), f"{digest}|{text}"))
    return text


@dataclass(frozen=True)
class _Remember:
    """The Redis copy of a stored response, sent with the transaction's other after-commit
    writes (core.after_commit). A failure is ignored: PostgreSQL still has the record."""

    redis_key: str
    value: str

    def stage(self, pipe: Pipeline) -> int:
        pipe.set(self.redis_key, self.value, ex=settings.IDEMPOTENCY_TTL_SECONDS)
        return 1

    def finish(self, replies: list[Any]) -> None:
        pass


def purge_expired(*, batch: int = 5000) -> int:
    """Delete idempotency records past their lifetime (the hourly job); returns how many."""
    total = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM numbering_idempotencyrecord WHERE id IN (SELECT id FROM numbering_idempotencyrecord"
                " WHERE expires_at <= %s ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)",
                [clock.now(), batch],
            )
            deleted = cursor.rowcount
        total += deleted
        if deleted < batch:
            return total
