"""How often a cache-sync pass reads the epoch and heartbeats (ADR 1200, 2026-12-02 amendment).

A pass runs at every NOTIFY, so under write load it runs tens of times a second; the epoch
read and the heartbeat used to run in every one of them (about half of the cache-sync's CPU
in the lifecycle mix). They now run on the heartbeat's clock: these tests fail when either
runs once per pass again, and when a bumped epoch waits for the heartbeat's clock.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import redis_client
from numbering import cache_epoch, cache_sync
from tests.cache.conftest import RedisProcess
from tests.grpc_server.conftest import as_platform


def heartbeats(client: Any) -> int:
    return int(client.get(redis_client.lease_sequence_key()) or 0)


def test_a_notify_storm_reads_the_epoch_and_heartbeats_on_the_heartbeat_clock(
    committed: None, cache_redis: RedisProcess
) -> None:
    interval = 0.2
    sync = cache_sync.CacheSync(interval=interval)
    client = cache_redis.client()
    as_platform(sync.tick)  # the first pass: reads the epoch, resyncs, heartbeats
    first = heartbeats(client)
    assert first >= 1
    passes, started = 0, time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        while time.monotonic() - started < 5 * interval:
            as_platform(sync.tick)
            passes += 1
    elapsed = time.monotonic() - started
    epoch_reads = sum("numbering_leasecacheepoch" in q["sql"] for q in queries.captured_queries)
    sent = heartbeats(client) - first
    assert passes > 40, f"only {passes} passes: the storm did not happen"
    # At most one epoch read per period and one heartbeat per half period (+1 for the edges),
    # and at least one heartbeat per period: the workers' trust never waits on the load.
    assert epoch_reads <= elapsed / interval + 1, f"{epoch_reads} epoch reads in {passes} passes"
    assert elapsed / interval - 1 <= sent <= 2 * elapsed / interval + 1, f"{sent} heartbeats in {passes} passes"


def test_a_bumped_epoch_is_heartbeated_in_the_pass_that_reads_it(committed: None, cache_redis: RedisProcess) -> None:
    """The epoch is re-read a period after the last read; the heartbeat clock (half a period)
    must not delay the new epoch's resync and heartbeat by another half period."""
    interval = 2.0
    sync = cache_sync.CacheSync(interval=interval)
    client = cache_redis.client()
    t0 = time.monotonic()
    as_platform(sync.tick)  # reads the epoch, heartbeats
    time.sleep(max(0.0, t0 + 0.6 * interval - time.monotonic()))
    as_platform(sync.tick)  # heartbeats again (half a period passed); the epoch is not re-read
    new = as_platform(lambda: cache_epoch.bump("test: the cadence"))
    time.sleep(max(0.0, t0 + 1.05 * interval - time.monotonic()))
    before = heartbeats(client)
    as_platform(sync.tick)  # a period since the read, under half a period since the heartbeat
    synced = client.get(redis_client.lease_synced_key())
    assert synced is not None and synced.decode().startswith(f"{new}|"), "the new epoch was not resynced"
    assert heartbeats(client) > before, "the new epoch was not heartbeated in the pass that read it"
