"""One batch of the cache-sync's queue (ADR 1200): taken, deleted and read in one statement."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from core import redis_client
from numbering import cache_epoch, lease_cache
from numbering.cache_sync import CacheSync
from numbering.lease_lookup import epoch_micros
from numbering.lifecycle import State
from numbering.models import Lease, LeaseCacheChange, Number
from tests.cache.conftest import RedisProcess
from tests.grpc_server.conftest import as_platform
from tests.numbering.helpers import number_in


def test_a_batch_applies_each_number_once_counts_every_row_and_skips_vanished_numbers(
    committed: None, cache_redis: RedisProcess, alice: Any
) -> None:
    # The commits' own fast-path writes go to another Redis database: only the drain fills ours.
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{cache_redis.port}/1"):
        redis_client.reset()
        assigned = as_platform(lambda: number_in(State.ASSIGNED, alice))
        free = as_platform(lambda: number_in(State.AVAILABLE, alice))
    redis_client.reset()
    LeaseCacheChange.objects.all().delete()
    vanished = (Number.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1_000_000
    for number_id in (assigned.id, vanished, assigned.id, free.id):
        LeaseCacheChange.objects.create(number_id=number_id)
    sync, epoch = CacheSync(batch=3), as_platform(cache_epoch.read)
    written: list[str] = []

    with CaptureQueriesContext(connection) as queries:
        first = as_platform(lambda: sync.drain_once(epoch, after_write=written.append))
    assert first == 3  # three queue rows consumed, the vanished number's among them
    assert written == [assigned.number]  # once, though queued twice; nothing for the vanished one
    # One round trip for the queue and the numbers (it was four: lock, numbers, leases, delete);
    # the rest is the transaction and the RLS scope.
    touching = [q["sql"] for q in queries.captured_queries if "numbering_" in q["sql"]]
    assert len(touching) == 1 and touching[0].startswith("WITH"), touching
    assert list(LeaseCacheChange.objects.values_list("number_id", flat=True)) == [free.id]

    assert as_platform(lambda: sync.drain_once(epoch, after_write=written.append)) == 1
    assert written == [assigned.number, free.number]
    assert as_platform(lambda: sync.drain_once(epoch)) == 0

    client = cache_redis.client()
    lease = as_platform(lambda: Lease.objects.get(number_id=assigned.id, status=Lease.Status.ACTIVE))
    version, stored_epoch, entry = lease_cache.read_value(assigned.number, client)
    assert (version, stored_epoch) == (assigned.version, epoch)
    assert entry["state"] == "ASSIGNED" and entry["tenant_id"] == str(alice.id)
    assert entry["lease_id"] == str(lease.id)
    cached = lease_cache.read_value(free.number, client)
    assert cached is not None and cached[2]["state"] == "AVAILABLE" and cached[2]["lease_id"] is None
    assert epoch_micros(lease.expires_at) > 0
