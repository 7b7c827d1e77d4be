"""The one Redis module: connections and every key the service writes.

Every key, channel and pattern is built here, so an operator (or a test) sees the whole
keyspace in one place and two modules can never disagree on a format:

    numbering:lease:<number>                    lease cache entry "<version>|<epoch>|<json>" (LEASE_CACHE_PREFIX)
    numbering:lease:invalidate:<db index>       pub/sub channel: "<seq>|n|<number>" (an entry changed),
                                                "<seq>|h|<epoch>" (cache-sync heartbeat), ADR 1200
    numbering:lease:_seq                        the channel's message sequence (INCR per message)
    numbering:lease:_synced                     "<epoch>|<redis run_id>": this Redis incarnation was
                                                resynced by the cache-sync for that epoch
    numbering:reservation:<number>|<res id>     reservation TTL key (RESERVATION_TTL_PREFIX)
    numbering:reservation:deadlines             sorted set of TTL keys by deadline
    numbering:idem:<sha256(scope|key)>          idempotency replay copy
    numbering:anomaly:<kind>:<tenant>:<minute>  anomaly counters (WRONG_TENANT and friends)
    numbering:<django cache key>                Django's cache (settings.CACHES KEY_PREFIX)

Every key has a TTL except the three of `permanent_keys()`, the cache's own bookkeeping: the
cache server evicts with volatile-lru (deploy/redis/cache.conf, ADR 1507), so memory pressure
takes cached values and never the sequence, the resync marker or the deadlines. A new key
without a TTL belongs in that list and in the ADR, or it fills the server for good.

Connections: `client()` is the process's shared synchronous client (short timeouts: a
cache must never hold up a request); `new_client()` gives a dedicated connection for a
long-lived reader (pub/sub, keyspace events) or a thread of its own; `async_client()`
serves the gRPC event loop from a bounded pool (LEASE_REDIS_MAX_CONNECTIONS, ADR 1508).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

# --- keys -------------------------------------------------------------------------------
LEASE_INVALIDATION_CHANNEL = "numbering:lease:invalidate"
IDEMPOTENCY_PREFIX = "numbering:idem:"
ANOMALY_PREFIX = "numbering:anomaly:"
ANOMALY_COUNTER_TTL_SECONDS = 3600  # counters cover the detector's look-back with room to spare


def lease_key(number: str) -> str:
    return settings.LEASE_CACHE_PREFIX + number


def lease_invalidation_channel(client: redis.Redis) -> str:
    """The invalidation channel of the Redis database `client` uses. Pub/sub ignores the
    database index, so the channel names it: processes on another index of the same server
    (another environment, another engineer's tests) neither hear nor break our sequence."""
    return f"{LEASE_INVALIDATION_CHANNEL}:{int(client.connection_pool.connection_kwargs.get('db', 0) or 0)}"


def lease_sequence_key() -> str:
    return settings.LEASE_CACHE_PREFIX + "_seq"


def lease_synced_key() -> str:
    return settings.LEASE_CACHE_PREFIX + "_synced"


def permanent_keys() -> tuple[str, ...]:
    """The only keys written without a TTL, so the only ones volatile-lru never evicts."""
    return (lease_sequence_key(), lease_synced_key(), reservation_deadlines_key())


def lease_entry_pattern() -> str:
    """Every lease entry (numbers are digits, E.164 with a leading +): not the _ keys."""
    return settings.LEASE_CACHE_PREFIX + "[+0-9]*"


def reservation_ttl_key(number: str, reservation_id: uuid.UUID | str) -> str:
    return f"{settings.RESERVATION_TTL_PREFIX}{number}|{reservation_id}"


def parse_reservation_ttl_key(key: bytes | str) -> tuple[str, str] | None:
    """(number, reservation id) of a reservation TTL key, or None for any other key."""
    text = key.decode() if isinstance(key, bytes) else key
    prefix = settings.RESERVATION_TTL_PREFIX
    if not text.startswith(prefix):
        return None
    number, sep, reservation_id = text[len(prefix) :].partition("|")
    if not sep or not number:
        return None
    try:
        uuid.UUID(reservation_id)
    except ValueError:
        return None
    return number, reservation_id


def reservation_deadlines_key() -> str:
    return f"{settings.RESERVATION_TTL_PREFIX}deadlines"


def idempotency_key(scope: str, key: str) -> str:
    return IDEMPOTENCY_PREFIX + hashlib.sha256(f"{scope}|{key}".encode()).hexdigest()


def anomaly_key(kind: str, tenant_id: uuid.UUID | str, minute: int) -> str:
    return f"{ANOMALY_PREFIX}{kind}:{tenant_id}:{minute}"


def anomaly_pattern(kind: str) -> str:
    return f"{ANOMALY_PREFIX}{kind}:*"


# --- connections ------------------------------------------------------------------------
_clients: dict[float, redis.Redis] = {}


def client(timeout: float = 0.5) -> redis.Redis:
    """The process's shared client for `timeout` (thread-safe: redis-py pools connections)."""
    shared = _clients.get(timeout)
    if shared is None:
        shared = _clients[timeout] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=min(timeout, 1.0)
        )
    return shared


def new_client(url: str | None = None, **options: Any) -> redis.Redis:
    """A connection of the caller's own (pub/sub, keyspace events, a background thread)."""
    return redis.Redis.from_url(url or settings.REDIS_URL, **options)


def async_client(url: str | None = None, *, timeout: float, max_connections: int, name: str) -> aioredis.Redis:
    """An event loop's client with at most `max_connections` connections (ADR 1508): a
    burst of cache misses queues for a connection instead of opening one per waiting
    call, so a cold start or a trust lapse at thousands of calls per second cannot turn
    into a connect storm that starves the loop and fills the server's maxclients. A call
    that waits longer than `timeout` for a connection fails as a Redis error would."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url or settings.REDIS_URL,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        client_name=name,
    )
    return aioredis.Redis.from_pool(pool)


def reset() -> None:
    """Forget the shared clients (after a fork, or when a test points REDIS_URL elsewhere)."""
    _clients.clear()
