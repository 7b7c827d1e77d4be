"""PostgreSQL without a primary (a failover) while Redis is fine: the cache-sync keeps
heartbeating at its period, so workers keep trusting their caches and cached leases keep
answering (DESIGN §3.1, ADR 1200). The postgres-failover chaos drill found the heartbeat
waiting out a database backoff as long as the trust window, and cached leases refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.db import connections

from core import redis_client
from numbering.cache_sync import CacheSync
from tests.cache.conftest import RedisProcess, eventually
from tests.conftest import superuser_dsn

pytestmark = pytest.mark.usefixtures("committed")


def _refuse_app_connections(refuse: bool) -> None:
    name = connections["default"].settings_dict["NAME"]
    app = connections["default"].settings_dict["USER"]
    with psycopg.connect(superuser_dsn(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT {0 if refuse else -1}')
        if refuse:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND usename = %s",
                [name, app],
            )


@contextmanager
def _heartbeats(cache_redis: RedisProcess) -> Iterator[tuple[CacheSync, Callable[[float], list[float]]]]:
    """A running cache-sync and `watch(seconds)`: the heartbeats it publishes in that time."""
    sync = CacheSync(interval=settings.LEASE_CACHE_HEARTBEAT_MS / 1000)
    runner = threading.Thread(target=sync.run, daemon=True)
    client = cache_redis.client()
    pubsub = client.pubsub()
    pubsub.subscribe(redis_client.lease_invalidation_channel(client))

    def watch(seconds: float) -> list[float]:
        beats: list[float] = []
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            message = pubsub.get_message(timeout=0.05)
            if message and message["type"] == "message" and b"|h|" in message["data"]:
                beats.append(time.monotonic())
        return beats

    runner.start()
    try:
        assert watch(1.0), "the cache-sync never heartbeated"
        yield sync, watch
    finally:
        sync.stop()
        runner.join(20)
        connections.close_all()


def _assert_no_lapse(started: float, beats: list[float]) -> None:
    trust = settings.LEASE_CACHE_TRUST_MS / 1000
    gaps = [b - a for a, b in zip([started, *beats], beats, strict=False)]
    assert len(beats) >= 4, beats
    assert max(gaps) < trust, f"a heartbeat gap of {max(gaps):.2f} s lets the workers' trust ({trust} s) lapse"


def test_heartbeats_keep_their_period_while_postgres_refuses(cache_redis: RedisProcess) -> None:
    with _heartbeats(cache_redis) as (_, watch):
        _refuse_app_connections(True)
        try:
            outage_started = time.monotonic()
            beats = watch(4.0)
        finally:
            _refuse_app_connections(False)
    _assert_no_lapse(outage_started, beats)


def test_heartbeats_keep_their_period_while_postgres_is_silent(cache_redis: RedisProcess) -> None:
    """A database that takes the question and never answers (a partition, a frozen server;
    here another session holds the lock the epoch read needs): the pass waits on its own
    thread while the loop keeps heartbeating, and it resumes draining once answers come."""
    with _heartbeats(cache_redis) as (sync, watch):
        with psycopg.connect(superuser_dsn()) as locker:
            locker.execute("LOCK TABLE numbering_leasecacheepoch IN ACCESS EXCLUSIVE MODE")
            silence_started = time.monotonic()
            beats = watch(4.0)
            assert sync._last_error.startswith("database silent"), sync._last_error
            locker.rollback()
        assert eventually(lambda: sync._last_error == ""), "the loop did not resume after the database answered"
    _assert_no_lapse(silence_started, beats)
