"""The cache server at its maxmemory (ADR 1507): cached values go, the cache's bookkeeping stays.

The server runs from the committed config (deploy/redis/cache.conf, volatile-lru). Under
allkeys-lru the invalidation sequence and the resync marker were evicted like any value, and
every eviction cost every gRPC worker its trust (a sequence gap) and the cache-sync a full
resync: the redis-memory-pressure drill counted 161 trust losses in 30 s. These tests fail
under that policy; bench/chaos (`make drill-redis-memory-pressure`) measures the same under load.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from django.conf import settings

from core import redis_client
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from numbering.cache_sync import SYNC_RESYNCS
from numbering.lease_lookup import TRUST_LOST
from numbering.lifecycle import State
from tests.cache.conftest import RedisProcess, eventually
from tests.factories import NumberFactory
from tests.grpc_server.conftest import as_platform
from tests.numbering.helpers import number_in


@pytest.fixture
def served(committed_cache_redis: RedisProcess, start_server: Any, connect: Any) -> Any:
    server = start_server(redis_url=committed_cache_redis.url)
    return server, connect(server)


def validate(stub: Any, number: str, tenant: Any) -> pb.ValidateLeaseResponse:
    return stub.ValidateLease(pb.ValidateLeaseRequest(number=number, tenant_id=str(tenant.id)), timeout=10)


def trust_lost() -> float:
    return sum(s.value for m in TRUST_LOST.collect() for s in m.samples if s.name.endswith("_total"))


def fill(client: redis.Redis, seconds: float) -> int:
    """Cap maxmemory 1 MiB above what is used and write cache-like values (4 KiB, with a TTL)
    for `seconds`; the keys the server evicted meanwhile."""
    before = int(client.info("stats")["evicted_keys"])
    client.config_set("maxmemory", str(int(client.info("memory")["used_memory"]) + 1024 * 1024))
    blob, written = b"x" * 4096, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for _ in range(50):
            pipe.set(f"test:filler:{written}", blob, ex=600)
            written += 1
        pipe.execute()
    return int(client.info("stats")["evicted_keys"]) - before


def test_every_key_the_service_writes_has_a_ttl_but_the_bookkeeping(
    served: Any, committed_cache_redis: RedisProcess, connect: Any, alice: Any, bob: Any
) -> None:
    """volatile-lru evicts only keys with a TTL: a key without one is never evicted, so it
    must be one of the three the cache cannot lose (core.redis_client.permanent_keys)."""
    server, stub = served
    client = committed_cache_redis.client()
    free = as_platform(NumberFactory)
    held = as_platform(lambda: number_in(State.ASSIGNED, alice))
    # A mutation with an idempotency key (replay copy), a reservation (TTL key and deadline),
    # a lease read (lease entry), a WRONG_TENANT answer (anomaly counter).
    connect(server, "customer-portal-bff").Reserve(
        pb.ReserveRequest(number=free.number, tenant_id=str(alice.id), ttl_seconds=600),
        metadata=[("idempotency-key", "pressure-1")],
        timeout=10,
    )
    assert validate(stub, held.number, alice).valid
    assert validate(stub, held.number, bob).reason == pb.ValidateLeaseResponse.Reason.WRONG_TENANT
    kinds = {
        "idempotency copy": redis_client.IDEMPOTENCY_PREFIX + "*",
        "reservation TTL key": f"{redis_client.reservation_ttl_key(free.number, '')}*",
        "lease entry": redis_client.lease_key(held.number),
        "anomaly counter": redis_client.anomaly_pattern("wrong_tenant"),
    }
    for kind, pattern in kinds.items():
        assert eventually(lambda p=pattern: list(client.scan_iter(match=p))), f"no {kind} written"
    permanent = set(redis_client.permanent_keys())
    assert eventually(lambda: all(client.exists(k) for k in permanent)), "the bookkeeping keys are written"
    without_ttl = {k.decode() for k in client.scan_iter(count=1000) if client.ttl(k) == -1}
    assert without_ttl == permanent
    # Django's cache (unused by the service today) would write with its default timeout.
    assert settings.CACHES["default"].get("TIMEOUT", 300) is not None


def test_pressure_evicts_cached_values_and_never_costs_the_trust(
    served: Any, committed_cache_redis: RedisProcess, alice: Any
) -> None:
    server, stub = served
    client = committed_cache_redis.client()
    held = as_platform(lambda: number_in(State.ASSIGNED, alice))
    for _ in range(3):
        assert validate(stub, held.number, alice).valid
    lookup = server.worker.lookup
    assert eventually(lambda: lookup.trusted and held.number in lookup._local)
    assert client.exists(redis_client.lease_key(held.number))
    lost, resyncs = trust_lost(), SYNC_RESYNCS._value.get()

    evicted = fill(client, seconds=3)  # many heartbeats long: the sequence is INCRed every 200 ms

    assert evicted > 1000
    assert not client.exists(redis_client.lease_key(held.number)), "the pressure never reached a cached value"
    assert trust_lost() == lost, "a worker lost its trust: the cache's bookkeeping was evicted"
    assert SYNC_RESYNCS._value.get() == resyncs, "the cache-sync resynced: its marker was evicted"
    assert all(client.exists(k) for k in redis_client.permanent_keys()[:2])
    assert lookup.trusted and held.number in lookup._local  # the local entry was never dropped
    assert validate(stub, held.number, alice).valid
