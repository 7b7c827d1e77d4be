"""The lease cache's epoch: which database history a cache entry belongs to (ADR 1200).

The one row of `LeaseCacheEpoch` holds a random token. Every Redis entry and every
cache-sync heartbeat carries it; a worker trusts only entries and heartbeats of the epoch
it read from PostgreSQL. A point-in-time restore makes versions go backwards: the restore
runbook bumps the epoch (`manage.py bump_cache_epoch`), so every entry written before is
foreign at once. Two databases never share a token, so a Redis shared by mistake is never
trusted across them. A missing row (a truncated table) is recreated with a fresh token,
which is the safe direction: nothing cached before is trusted.
"""

from __future__ import annotations

import secrets
import threading
import time

from django.db import transaction

from numbering.models import LeaseCacheEpoch

_lock = threading.Lock()
_cached: tuple[str, float] | None = None
WRITER_CACHE_SECONDS = 2.0


def new_token() -> str:
    return secrets.token_hex(16)


def read() -> str:
    """The epoch, from PostgreSQL (created if the row is missing)."""
    row = LeaseCacheEpoch.objects.filter(id=1).values_list("epoch", flat=True).first()
    if row is not None:
        return row
    with transaction.atomic():
        obj, _ = LeaseCacheEpoch.objects.get_or_create(id=1, defaults={"epoch": new_token(), "reason": "recreated"})
    return obj.epoch


def current() -> str:
    """The epoch for a cache writer, re-read at most every WRITER_CACHE_SECONDS. A writer
    holding an old epoch writes entries nobody trusts: a miss, never a wrong answer."""
    global _cached
    cached = _cached
    if cached is not None and time.monotonic() - cached[1] < WRITER_CACHE_SECONDS:
        return cached[0]
    epoch = read()
    with _lock:
        _cached = (epoch, time.monotonic())
    return epoch


def forget() -> None:
    global _cached
    _cached = None


def bump(reason: str) -> str:
    """A new epoch: every cache entry and local entry written before is distrusted."""
    if not reason.strip():
        raise ValueError("reason: required (why the cache epoch is bumped, e.g. 'PITR restore 2026-12-01')")
    token = new_token()
    with transaction.atomic():
        LeaseCacheEpoch.objects.update_or_create(id=1, defaults={"epoch": token, "reason": reason[:200]})
    forget()
    return token
