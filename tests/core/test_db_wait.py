"""The two waits of a gRPC call on PostgreSQL (core.db_wait, ADR 1505): a unit of work on a
database thread waits at most the cap; one queued behind threads that keep finishing work
waits for its turn (load is not silence); one queued behind threads that are all stuck gives
up after the cap; neither passes the caller's deadline. Real threads, and a real PostgreSQL
where the database matters."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from django.db import OperationalError, connection

from core import request_context
from core.db_wait import DatabaseThreads, DatabaseWaitExpired
from numbering.lease_lookup import db_unit_of_work


def _gather(threads: DatabaseThreads, cap: float, calls: list[Any]) -> list[Any]:
    async def main() -> list[Any]:
        return await asyncio.gather(*(threads.run(cap, *call) for call in calls), return_exceptions=True)

    return asyncio.run(main())


def _sleep_on_the_database(seconds: float) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return time.monotonic()


@pytest.mark.usefixtures("committed")
def test_a_call_queued_behind_a_busy_pool_waits_for_its_turn_past_the_cap() -> None:
    threads = DatabaseThreads(1)
    try:
        started = time.monotonic()
        results = _gather(threads, 0.3, [(db_unit_of_work, _sleep_on_the_database, 0.1) for _ in range(6)])
    finally:
        threads.shutdown(wait=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    # The last one waited about 0.6 s, twice the cap: the pool kept finishing work.
    assert max(results) - started >= 0.55


def test_a_stuck_call_and_the_calls_queued_behind_it_give_up_after_the_cap() -> None:
    threads = DatabaseThreads(1)
    release = threading.Event()
    ran: list[str] = []

    def stuck() -> None:
        ran.append("stuck")
        release.wait(10)

    def queued() -> None:
        ran.append("queued")

    try:
        started = time.monotonic()
        results = _gather(threads, 0.3, [(stuck,), (queued,)])
        took = time.monotonic() - started
    finally:
        release.set()
        threads.shutdown(wait=True)
    assert [type(r) for r in results] == [DatabaseWaitExpired, DatabaseWaitExpired]
    assert (results[0].queued, results[1].queued) == (False, True)
    assert 0.25 <= took < 1.0, took
    assert ran == ["stuck"]  # the queued unit was withdrawn, never run late


def test_a_call_that_waited_behind_a_stuck_pool_gets_no_fresh_budget_when_a_thread_frees_up() -> None:
    """The postgres-partition drill's case: the thread comes free with an error (libpq gave
    up), the queued call takes it, and the database is still silent."""
    threads = DatabaseThreads(1)
    release = threading.Event()

    def fails_late() -> None:
        time.sleep(0.3)
        raise OperationalError("server closed the connection unexpectedly")

    try:
        started = time.monotonic()
        results = _gather(threads, 0.45, [(fails_late,), (release.wait, 10)])
        took = time.monotonic() - started
    finally:
        release.set()
        threads.shutdown(wait=True)
    assert isinstance(results[0], OperationalError)
    assert isinstance(results[1], DatabaseWaitExpired) and not results[1].queued
    assert 0.4 <= took < 0.65, took  # the cap from when it was queued, not 0.3 + 0.45


def test_failures_of_the_database_are_not_progress() -> None:
    """A pool whose units all fail on the database is not a busy pool: a call queued behind
    a stuck one still gives up after the cap even while other threads fail fast."""
    threads = DatabaseThreads(2)
    release = threading.Event()

    def stuck() -> None:
        release.wait(10)

    def failing() -> None:
        time.sleep(0.05)
        raise OperationalError("connection refused")

    try:
        started = time.monotonic()
        results = _gather(threads, 0.3, [(stuck,), *[(failing,)] * 20])
        took = time.monotonic() - started
    finally:
        release.set()
        threads.shutdown(wait=True)
    assert isinstance(results[0], DatabaseWaitExpired)
    expired = [r for r in results[1:] if isinstance(r, DatabaseWaitExpired)]
    failed = [r for r in results[1:] if isinstance(r, OperationalError)]
    # 20 × 50 ms on the one free thread would take 1 s: the failures did not keep the
    # calls behind them waiting, they gave up at the cap.
    assert expired and any(r.queued for r in expired), results
    assert len(expired) + len(failed) == 20
    assert took < 0.6, took


def test_a_refusal_the_database_answered_is_progress() -> None:
    threads = DatabaseThreads(1)

    def refused() -> None:
        time.sleep(0.1)
        raise LookupError("not found")

    try:
        results = _gather(threads, 0.25, [(refused,)] * 5)
    finally:
        threads.shutdown(wait=True)
    assert [type(r) for r in results] == [LookupError] * 5


def test_no_wait_passes_the_callers_deadline() -> None:
    threads = DatabaseThreads(1)
    release = threading.Event()

    async def main() -> tuple[BaseException | None, float]:
        with request_context.request_id_scope():
            started = time.monotonic()
            # 0.3 s left once the answer's margin is kept
            request_context.bind_deadline(lambda: 0.4 - (time.monotonic() - started))
            try:
                await threads.run(30.0, release.wait, 10)
            except DatabaseWaitExpired as exc:
                return exc, time.monotonic() - started
            return None, time.monotonic() - started

    try:
        error, took = asyncio.run(main())
    finally:
        release.set()
        threads.shutdown(wait=True)
    assert isinstance(error, DatabaseWaitExpired) and not error.queued
    assert 0.25 <= took < 0.6, took
    assert "on the database" in str(error)
