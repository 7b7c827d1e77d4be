"""The one clock: every service, selector and job asks it what time it is.

Production runs on `SystemClock` (Django's aware UTC now). Tests install a `FakeClock`
(`tests/conftest.py: fake_clock`) and move time forward with `advance()`, so a TTL,
an expiry or a quarantine end is tested by stepping the clock — never by sleeping and
hoping the machine was fast enough. Timing claims (how quickly something happens on
real hardware) live in `bench/`, not in tests.

The clock is installed per process (`install`, or the `installed` context manager), not
passed down every call chain: one seam, the same for REST, gRPC, Celery and commands.
SQL that must agree with PostgreSQL's own `now()` (a CAS guard on `reserved_until`)
passes `clock.now()` as a parameter, so a fake clock reaches the database too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from time import time as _time
from typing import Protocol

from django.utils import timezone


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return timezone.now()


class FakeClock:
    """A clock that only moves when told to (thread-safe: concurrency tests share it)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or timezone.now()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when


_SYSTEM = SystemClock()
_installed: Clock = _SYSTEM


def now() -> datetime:
    return _installed.now()


def timestamp() -> float:
    """Seconds since the epoch: time.time() on the system clock (the ValidateLease hot path
    asks on every call and must not build a datetime), the fake clock's otherwise."""
    clock = _installed
    return _time() if clock is _SYSTEM else clock.now().timestamp()


def today() -> date:
    """The local date (TIME_ZONE) of the clock's now: contract end dates, export periods."""
    return timezone.localdate(now())


def install(clock: Clock | None) -> None:
    """Use `clock` from now on in this process (None: the system clock again)."""
    global _installed
    _installed = clock or _SYSTEM


@contextmanager
def installed(clock: Clock) -> Iterator[Clock]:
    previous = _installed
    install(clock)
    try:
        yield clock
    finally:
        install(previous)
