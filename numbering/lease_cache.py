"""The Redis lease cache behind ValidateLease (DESIGN §3.1, ADR 0300, ADR 1200).

Value: "<version>|<epoch>|<json>" under core.redis_client.lease_key(number). The Lua
script compares versions within one epoch so that a stale writer (a slow on_commit hook, a
refill) never overwrites a newer entry; an entry of another epoch (another database, or
this one before a restore) is overwritten whatever its version.

Two writers, one script:
- the fast path, `refresh_after_commit`: best effort after commit; failures are logged and
  counted, never raised;
- the durable path, `numbering.cache_sync`: drains the `LeaseCacheChange` rows the database
  triggers wrote in the committing transaction, retrying until Redis takes the write.

Every publish on the invalidation channel goes through a script that INCRs one sequence
key, so a worker sees a gap when a message is lost. The cache-sync's heartbeat script
publishes only while `_synced` names this epoch and this Redis incarnation (run_id): a Redis
restarted empty or from an older snapshot gets no heartbeat until it has been resynced.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from django.db import DatabaseError
from prometheus_client import Counter
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from core import redis_client
from core.after_commit import redis_after_commit
from core.logging import mask_number
from numbering import cache_epoch
from numbering.snapshots import cache_entry_of

log = logging.getLogger(__name__)

CACHE_TTL_SECONDS = 24 * 3600

CACHE_WRITES = Counter("numbering_lease_cache_writes_total", "Lease cache writes after commit", ["result"])

# KEYS = entry key, sequence key; ARGV = version, epoch, json, ttl, channel, number, force
# ("1": skip the guard; the reconciler and the resync, which write what PostgreSQL holds
# now; a commit racing them has its own queued row, applied after). An empty
# channel stores without publishing: a refill from PostgreSQL changes nothing other workers
# could hold stale. A refused (stale) write still publishes: a refill may have stored this
# very version without publishing, and workers holding an older copy must still hear of it.
_SET_IF_NEWER = """
local stored = 1
local current = redis.call('GET', KEYS[1])
if current then
  local v, e = string.match(current, '^(%d+)|([^|{]*)|')
  if v and e == ARGV[2] and tonumber(v) >= tonumber(ARGV[1]) and ARGV[7] ~= '1' then stored = 0 end
end
if stored == 1 then
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3], 'EX', tonumber(ARGV[4]))
end
if ARGV[5] ~= '' then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('PUBLISH', ARGV[5], seq .. '|n|' .. ARGV[6])
end
return stored
"""

# KEYS = sequence key, synced key; ARGV = channel, epoch. Publishes "<seq>|h|<epoch>" only if
# this Redis incarnation was resynced for this epoch; returns the sequence or -1.
_HEARTBEAT = """
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
if redis.call('GET', KEYS[2]) ~= ARGV[2] .. '|' .. run_id then return -1 end
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], seq .. '|h|' .. ARGV[2])
return seq
"""

# KEYS = entry key, sequence key; ARGV = channel, number: a number that no longer exists.
_DELETE = """
redis.call('DEL', KEYS[1])
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[1], seq .. '|n|' .. ARGV[2])
return 1
"""

_scripts: dict[tuple[int, str], Any] = {}


def _script(client: redis.Redis, source: str) -> Any:
    """A script registered once per client."""
    key = (id(client), source)
    script = _scripts.get(key)
    if script is None:
        script = _scripts[key] = client.register_script(source)
    return script


def _set_if_newer(
    client: redis.Redis, number: str, version: int, entry: dict[str, Any], epoch: str, *, publish: bool, force: bool
) -> tuple[list[str], list[Any]]:
    """The keys and arguments of the _SET_IF_NEWER script for one entry."""
    keys = [redis_client.lease_key(number), redis_client.lease_sequence_key()]
    args = [
        version,
        epoch,
        json.dumps(entry, separators=(",", ":")),
        CACHE_TTL_SECONDS,
        redis_client.lease_invalidation_channel(client) if publish else "",
        number,
        "1" if force else "0",
    ]
    return keys, args


def write_entry(
    number: str,
    version: int,
    entry: dict[str, Any],
    *,
    publish: bool = True,
    epoch: str | None = None,
    client: redis.Redis | None = None,
    raise_errors: bool = False,
    force: bool = False,
) -> bool:
    """Store `entry` unless the cache already holds this or a newer version of this epoch;
    publish the number on the invalidation channel unless `publish` is False (a refill, not
    a change). Errors are logged and counted, or raised with `raise_errors` (the cache-sync
    retries)."""
    client = client or redis_client.client()
    try:
        if epoch is None:
            epoch = cache_epoch.current()
        keys, args = _set_if_newer(client, number, version, entry, epoch, publish=publish, force=force)
        stored = _script(client, _SET_IF_NEWER)(keys=keys, args=args)
    except (redis.RedisError, DatabaseError) as exc:
        _failed(number, exc)
        if raise_errors:
            raise
        return False
    CACHE_WRITES.labels("stored" if stored else "stale").inc()
    return bool(stored)


def _failed(number: str, exc: Exception) -> None:
    CACHE_WRITES.labels("error").inc()
    log.warning("lease cache write failed for %s: %s", mask_number(number), exc)


@dataclass
class _EntryAfterCommit:
    """The fast path's write, sent with the transaction's other after-commit writes in one
    round trip (core.after_commit). EVALSHA without the script-load check: a Redis that lost
    the script (restarted, SCRIPT FLUSH) answers NOSCRIPT, and the write is then made again
    through write_entry, which loads it."""

    number: str
    version: int
    entry: dict[str, Any]
    error: Exception | None = None

    def stage(self, pipe: Pipeline) -> int:
        try:
            epoch = cache_epoch.current()
        except DatabaseError as exc:
            self.error = exc
            return 0
        keys, args = _set_if_newer(pipe, self.number, self.version, self.entry, epoch, publish=True, force=False)
        pipe.evalsha(_script(redis_client.client(), _SET_IF_NEWER).sha, len(keys), *keys, *args)
        return 1

    def finish(self, replies: list[Any]) -> None:
        reply = self.error if self.error is not None else replies[0]
        if isinstance(reply, NoScriptError):
            write_entry(self.number, self.version, self.entry)
        elif isinstance(reply, Exception):
            _failed(self.number, reply)
        else:
            CACHE_WRITES.labels("stored" if reply else "stale").inc()


def delete_entry(number: str, *, client: redis.Redis) -> None:
    """Forget a number that no longer exists (and tell the workers)."""
    _script(client, _DELETE)(
        keys=[redis_client.lease_key(number), redis_client.lease_sequence_key()],
        args=[redis_client.lease_invalidation_channel(client), number],
    )


def heartbeat(client: redis.Redis, epoch: str) -> int:
    """Publish a heartbeat; -1 when this Redis was not resynced for `epoch` (see resync)."""
    return int(
        _script(client, _HEARTBEAT)(
            keys=[redis_client.lease_sequence_key(), redis_client.lease_synced_key()],
            args=[redis_client.lease_invalidation_channel(client), epoch],
        )
    )


def scan_numbers(client: redis.Redis, batch: int = 500) -> Iterator[list[str]]:
    """The numbers with a lease entry in this Redis, in batches."""
    prefix = len(redis_client.lease_key(""))
    numbers: list[str] = []
    for key in client.scan_iter(match=redis_client.lease_entry_pattern(), count=batch):
        numbers.append((key.decode() if isinstance(key, bytes) else str(key))[prefix:])
        if len(numbers) >= batch:
            yield numbers
            numbers = []
    if numbers:
        yield numbers


def mark_synced(client: redis.Redis, epoch: str) -> None:
    """Record that this Redis incarnation now holds what PostgreSQL held for `epoch`."""
    run_id = client.info("server")["run_id"]
    client.set(redis_client.lease_synced_key(), f"{epoch}|{run_id}")


def parse_value(raw: bytes | str) -> tuple[int, str, dict[str, Any]]:
    """(version, epoch, entry) of a stored value; epoch "" for a value written before ADR 1200."""
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    version, _, rest = text.partition("|")
    if rest.startswith("{"):
        return int(version), "", json.loads(rest)
    epoch, _, body = rest.partition("|")
    return int(version), epoch, json.loads(body)


def read_value(number: str, client: redis.Redis | None = None) -> tuple[int, str, dict[str, Any]] | None:
    raw = (client or redis_client.client()).get(redis_client.lease_key(number))
    return None if raw is None else parse_value(raw)


def read_entry(number: str) -> tuple[int, dict[str, Any]] | None:
    value = read_value(number)
    return None if value is None else (value[0], value[2])


def refresh_after_commit(snapshot: dict[str, Any]) -> None:
    """Schedule the fast-path cache write for when (and only if) the transaction commits.
    The durable path needs nothing from here: the triggers queued the number already."""
    redis_after_commit(_EntryAfterCommit(snapshot["number"], int(snapshot["version"]), cache_entry_of(snapshot)))
