"""The Redis lease cache's version guard and the invalidation it publishes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from core import redis_client
from core.db_wait import DatabaseThreads
from numbering import lease_cache
from numbering.lease_lookup import Entry, LeaseLookup

E = "test-epoch"
ENTRY = {"state": "ASSIGNED", "tenant_id": "t", "lease_id": "l", "expires_at": None, "kind": "MSISDN"}


@pytest.fixture
def subscriber() -> Iterator[redis.client.PubSub]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_client.lease_invalidation_channel(client))
    pubsub.get_message(timeout=1)
    yield pubsub
    pubsub.close()


def published(pubsub: redis.client.PubSub, number: str) -> list[bytes]:
    """Messages about `number` (pub/sub ignores the Redis database: other test runs on this
    Redis publish on the same channel)."""
    out, deadline = [], time.monotonic() + 0.3
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.05)
        # "<seq>|n|<number>" (ADR 1200): the number, in sequence order.
        if message and message["data"].endswith(b"|n|" + number.encode()):
            out.append(message["data"].rpartition(b"|")[2])
    return out


def test_stale_writer_never_overwrites_a_newer_entry_but_still_announces(subscriber: redis.client.PubSub) -> None:
    assert lease_cache.write_entry("+93790000010", 5, {**ENTRY, "lease_id": "new"}, epoch=E)
    assert not lease_cache.write_entry("+93790000010", 4, {**ENTRY, "lease_id": "old"}, epoch=E)
    assert lease_cache.read_entry("+93790000010") == (5, {**ENTRY, "lease_id": "new"})
    assert published(subscriber, "+93790000010") == [b"+93790000010", b"+93790000010"]


def test_refill_from_postgres_is_stored_without_an_invalidation(subscriber: redis.client.PubSub) -> None:
    assert lease_cache.write_entry("+93790000011", 2, ENTRY, publish=False, epoch=E)
    assert lease_cache.read_entry("+93790000011") == (2, ENTRY)
    assert published(subscriber, "+93790000011") == []


def test_local_cache_refuses_a_fetch_that_an_invalidation_overtook() -> None:
    lookup = LeaseLookup(threads=DatabaseThreads(1))
    lookup._subscribed = True
    lookup._trusted_until = float("inf")
    before = lookup._generation
    lookup.invalidate("+93790000012")  # a commit landed while the fetch was in flight
    lookup._remember("+93790000012", Entry(version=3, state="ASSIGNED"), before)
    assert "+93790000012" not in lookup._local
    lookup._remember("+93790000012", Entry(version=4, state="ASSIGNED"), lookup._generation)
    lookup._remember("+93790000012", Entry(version=3, state="ASSIGNED"), lookup._generation)
    assert lookup._local["+93790000012"].version == 4
    lookup._reset_local()  # resubscribed: anything fetched before may have missed a message
    lookup._remember("+93790000013", Entry(version=1, state="ASSIGNED"), before)
    assert "+93790000013" not in lookup._local
