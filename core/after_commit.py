"""Redis writes that wait for a commit, sent in one round trip (ADR 1100, amendment of 2026-12-03).

A lifecycle action leaves up to three Redis writes for after its commit: the lease cache
entry, the reservation TTL key and the idempotency copy. Each is a `RedisWrite`, handed to
`redis_after_commit`, which registers a Django on_commit hook for it: a transaction or
savepoint that rolls back drops the write exactly as Django drops the hook.

Inside `batched()` (entered by `core.rls.scoped_transaction` when it opens the transaction,
which every lifecycle action does) the hooks only queue their writes, and `batched` sends
them in one pipeline once the transaction has committed. Anywhere else (a transaction opened
by other code, a test's) a hook sends its write at once, in a pipeline of its own.

The writes are best effort, as they were as separate hooks: a failure is handed to the write
(it counts and logs it) and never raised, because the transaction has committed and the
durable paths (the cache-sync, the reservation safety net, the PostgreSQL idempotency
record) cover what Redis missed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import redis
from django.db import transaction
from redis.client import Pipeline

from core import redis_client

_local = threading.local()


class RedisWrite(Protocol):
    def stage(self, pipe: Pipeline) -> int:
        """Queue this write's commands on `pipe`; return how many."""

    def finish(self, replies: list[Any]) -> None:
        """The replies to its commands, in order; a failed command's reply is the RedisError
        (the whole pipeline failing gives every command that error). Must not raise."""


def redis_after_commit(write: RedisWrite) -> None:
    """Send `write` after the current transaction commits (never if it rolls back)."""
    transaction.on_commit(lambda: _committed(write))


def _committed(write: RedisWrite) -> None:
    pending: list[RedisWrite] | None = getattr(_local, "pending", None)
    if pending is None:
        send([write])
    else:
        pending.append(write)


@contextmanager
def batched() -> Iterator[None]:
    """Collect the after-commit writes of the transaction opened inside this block and send
    them in one round trip when it ends. Nested in another `batched`, the outer one sends."""
    if getattr(_local, "pending", None) is not None:
        yield
        return
    _local.pending = []
    try:
        yield
    finally:
        # Only hooks that ran are here, and hooks run only on commit: after a rollback the
        # list is empty.
        pending, _local.pending = _local.pending, None
        if pending:
            send(pending)


def send(writes: list[RedisWrite]) -> None:
    """One pipeline for `writes`; each gets its own replies."""
    pipe = redis_client.client().pipeline(transaction=False)
    counts = [write.stage(pipe) for write in writes]
    replies: list[Any]
    try:
        replies = pipe.execute(raise_on_error=False)
    except redis.RedisError as exc:
        replies = [exc] * sum(counts)
    start = 0
    for write, count in zip(writes, counts, strict=True):
        write.finish(replies[start : start + count])
        start += count
