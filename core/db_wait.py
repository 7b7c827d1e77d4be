"""How long a gRPC call waits for PostgreSQL: the one place for that rule (ADR 1504, ADR 1505).

The ORM is synchronous, so an async gRPC process runs its units of work on a pool of database
threads. A call waits for its unit of work in two places, and the budget (`cap`) means a
different thing in each:

- **running** on a database thread: at most `cap` seconds from when the thread took it. A
  database that does not answer (a partition, a held lock, a frozen server) costs `cap`.
- **queued** for a thread: as long as the pool keeps finishing work, only the caller's
  deadline bounds the wait. The queue is then a matter of load, and answering UNAVAILABLE
  early would turn load into retries (a retry storm that outlives its cause). When no
  thread has finished anything for `cap` seconds, every thread is stuck on a silent
  database and the queued call gives up as a running one would.
- Time in which the pool finished nothing counts once, queued or running: a call that
  waited 0.9 s in the queue of a stuck pool and then got a thread has 0.1 s left, not a
  fresh `cap`.

Neither wait goes past the caller's deadline (minus the time the answer needs to travel).
When the wait ends the call raises `DatabaseWaitExpired`: the caller answers UNAVAILABLE,
counted and retryable. A unit of work already running is not interrupted: it finishes when
libpq gives up (tcp_user_timeout) or the database answers, and a mutation's outcome is then
unknown, which the idempotency key covers (ADR 1400).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import Error as DatabaseError

from core.request_context import time_left

T = TypeVar("T")


class DatabaseWaitExpired(TimeoutError):
    """The unit of work did not finish within its budget; `queued` says where it was."""

    def __init__(self, waited: float, queued: bool) -> None:
        where = "waiting for a database thread that never came free" if queued else "on the database"
        super().__init__(f"no answer after {waited:.2f} s {where}")
        self.waited = waited
        self.queued = queued


class _Unit:
    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started: float | None = None


class DatabaseThreads(ThreadPoolExecutor):
    """The database threads of one gRPC process, and when one of them last finished a unit
    of work (how the waiters tell a busy pool from a silent database)."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "grpc-db") -> None:
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix)
        self.last_progress = time.monotonic()

    def _work(self, unit: _Unit, ctx: contextvars.Context, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        unit.started = time.monotonic()
        try:
            result = ctx.run(fn, *args)
        except DatabaseError:
            raise  # not progress: a database that fails every unit of work is not a busy one
        except Exception:
            self.last_progress = time.monotonic()  # a refusal the database answered (NOT_FOUND, ...)
            raise
        self.last_progress = time.monotonic()
        return result

    async def run(self, cap: float, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on a database thread, in the caller's context, and wait for it as the
        module docstring says. Raises DatabaseWaitExpired when the wait ends first."""
        loop = asyncio.get_running_loop()
        unit = _Unit()
        queued_at = time.monotonic()
        future = loop.run_in_executor(self, self._work, unit, contextvars.copy_context(), fn, args)
        while True:
            now = time.monotonic()
            # Time in which no thread of the pool finished anything counts, queued or not...
            left = cap - (now - max(self.last_progress, queued_at))
            if unit.started is not None:  # ...and so does our own unit's time on the database.
                left = min(left, cap - (now - unit.started))
            deadline = time_left()
            if deadline is not None:
                left = min(left, deadline)
            if left <= 0:
                queued = unit.started is None
                future.cancel()  # a queued unit never runs; a running one finishes on its own
                raise DatabaseWaitExpired(now - queued_at, queued)
            done, _ = await asyncio.wait((future,), timeout=left)
            if done:
                return future.result()
