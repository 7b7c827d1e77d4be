"""The Redis lease cache behind ValidateLease (DESIGN §3.1), written after commit.

Value: "<version>|<json>" under core.redis_client.lease_key(number). The Lua script compares
versions so that a stale writer (a slow on_commit hook, a backfill) never overwrites a
newer entry. Failures are logged and counted, never raised: the change is committed and
a cache miss falls back to PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from django.db import transaction
from prometheus_client import Counter

from core import redis_client
from core.logging import mask_number
from numbering.snapshots import cache_entry_of

log = logging.getLogger(__name__)

CACHE_TTL_SECONDS = 24 * 3600

CACHE_WRITES = Counter("numbering_lease_cache_writes_total", "Lease cache writes after commit", ["result"])

# KEYS[1] = key; ARGV = version, json, ttl, channel, number. An empty channel stores without
# publishing: a refill from PostgreSQL changes nothing other workers could hold stale.
# A refused (stale) write still publishes: a refill may have stored this very version
# without publishing, and workers holding an older copy must still hear of the change.
_SET_IF_NEWER = """
local stored = 1
local current = redis.call('GET', KEYS[1])
if current then
  local v = tonumber(string.match(current, '^(%d+)|'))
  if v and v >= tonumber(ARGV[1]) then stored = 0 end
end
if stored == 1 then
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', tonumber(ARGV[3]))
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return stored
"""

_scripts: dict[int, Any] = {}


def _set_if_newer() -> Any:
    """The version-guarded write, registered once per shared client."""
    shared = redis_client.client()
    script = _scripts.get(id(shared))
    if script is None:
        script = _scripts[id(shared)] = shared.register_script(_SET_IF_NEWER)
    return script


def write_entry(number: str, version: int, entry: dict[str, Any], *, publish: bool = True) -> bool:
    """Store `entry` unless the cache already holds this or a newer version; publish the
    number on the invalidation channel unless `publish` is False (a refill, not a change)."""
    try:
        stored = _set_if_newer()(
            keys=[redis_client.lease_key(number)],
            args=[
                version,
                json.dumps(entry, separators=(",", ":")),
                CACHE_TTL_SECONDS,
                redis_client.LEASE_INVALIDATION_CHANNEL if publish else "",
                number,
            ],
        )
    except redis.RedisError as exc:
        CACHE_WRITES.labels("error").inc()
        log.warning("lease cache write failed for %s: %s", mask_number(number), exc)
        return False
    CACHE_WRITES.labels("stored" if stored else "stale").inc()
    return bool(stored)


def read_entry(number: str) -> tuple[int, dict[str, Any]] | None:
    raw = redis_client.client().get(redis_client.lease_key(number))
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    version, _, body = text.partition("|")
    return int(version), json.loads(body)


def refresh_after_commit(snapshot: dict[str, Any]) -> None:
    """Schedule the cache write for when (and only if) the transaction commits."""
    number, version, entry = snapshot["number"], int(snapshot["version"]), cache_entry_of(snapshot)
    transaction.on_commit(lambda: write_entry(number, version, entry))
