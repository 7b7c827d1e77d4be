"""The Redis writes a lifecycle action leaves for after its commit go out in one round trip
(core.after_commit, ADR 1100 amendment of 2026-12-03), and only if the transaction commits.

Round trips are counted where redis-py sends bytes (`send_packed_command`: one per command,
one per pipeline), with real commits (`committed`), the way the gRPC and REST callers run an
action. Before the batch, a Reserve with an idempotency key made four: the idempotency GET,
the lease cache script, the reservation TTL pipeline and the idempotency copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.db import transaction
from redis.client import Pipeline
from redis.connection import AbstractConnection

from core import after_commit, redis_client, rls
from core.actors import Actor
from numbering import lease_cache, reservation_ttl, services
from tests.cache.conftest import RedisProcess
from tests.conftest import as_tenant
from tests.factories import NumberFactory

pytestmark = pytest.mark.usefixtures("committed")


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every round trip any Redis client of this process makes, in order (counted once the
    shared client's connection is open: its handshake is not an action's)."""
    redis_client.client().ping()
    sent: list[Any] = []
    original = AbstractConnection.send_packed_command

    def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    yield sent


def trips(sent: list[Any], call: Callable[[], Any]) -> int:
    before = len(sent)
    call()
    return len(sent) - before


def key() -> str:
    return uuid.uuid4().hex


def test_each_action_sends_its_after_commit_writes_in_one_round_trip(alice: Any, round_trips: list[Any]) -> None:
    number = NumberFactory().number
    actor = as_tenant(alice)
    reserve_key = key()
    released: list[Any] = []

    reserve = trips(
        round_trips,
        lambda: services.number_reserve(number=number, tenant_id=alice.id, actor=actor, idempotency_key=reserve_key),
    )
    assign = trips(
        round_trips,
        lambda: services.number_assign(number=number, tenant_id=alice.id, actor=actor, idempotency_key=key()),
    )
    release = trips(
        round_trips,
        lambda: released.append(services.number_release(number=number, tenant_id=alice.id, actor=actor)),
    )

    # The idempotency GET before the claim, then one pipeline: reserve's cache entry, TTL key
    # (SET + ZADD) and idempotency copy; assign's entry and copy; release's entry (no key).
    assert (reserve, assign, release) == (2, 2, 1)
    client = redis_client.client()
    version, _epoch, entry = lease_cache.read_value(number)  # type: ignore[misc]
    assert (version, entry["state"]) == (released[0].number["version"], "QUARANTINED")
    assert client.get(redis_client.idempotency_key(actor.identity, reserve_key)) is not None
    ttl_keys = list(client.scan_iter(match=redis_client.reservation_ttl_key(number, "*")))
    assert len(ttl_keys) == 1 and client.pttl(ttl_keys[0]) > 0


class Recording:
    """A write that records what happened to it."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def stage(self, pipe: Pipeline) -> int:
        pipe.set(f"numbering:test:{self.name}", "1", ex=60)
        self.log.append(f"stage {self.name}")
        return 1

    def finish(self, replies: list[Any]) -> None:
        self.log.append(f"finish {self.name} {replies}")


PLATFORM = Actor.system("test")


def test_a_rolled_back_transaction_sends_nothing(round_trips: list[Any]) -> None:
    log: list[str] = []

    def rolled_back() -> None:
        with pytest.raises(RuntimeError), rls.scoped_transaction(PLATFORM):
            after_commit.redis_after_commit(Recording("lost", log))
            raise RuntimeError("refused")

    assert trips(round_trips, rolled_back) == 0
    assert log == []
    assert redis_client.client().get("numbering:test:lost") is None


def test_a_rolled_back_savepoint_drops_only_its_own_writes(round_trips: list[Any]) -> None:
    log: list[str] = []

    def with_savepoint() -> None:
        with rls.scoped_transaction(PLATFORM):
            after_commit.redis_after_commit(Recording("kept", log))
            with pytest.raises(RuntimeError), transaction.atomic():
                after_commit.redis_after_commit(Recording("dropped", log))
                raise RuntimeError("the savepoint rolls back")
            after_commit.redis_after_commit(Recording("after", log))
            assert log == [], "nothing is sent before the commit"

    assert trips(round_trips, with_savepoint) == 1
    assert log == ["stage kept", "stage after", "finish kept [True]", "finish after [True]"]
    assert redis_client.client().get("numbering:test:dropped") is None


def test_outside_a_batched_transaction_each_write_goes_at_commit(round_trips: list[Any]) -> None:
    log: list[str] = []

    def plain_atomic() -> None:
        with transaction.atomic():
            after_commit.redis_after_commit(Recording("one", log))
            after_commit.redis_after_commit(Recording("two", log))

    assert trips(round_trips, plain_atomic) == 2
    assert log == ["stage one", "finish one [True]", "stage two", "finish two [True]"]


def test_a_redis_that_lost_the_script_still_gets_the_entry(alice: Any) -> None:
    number = NumberFactory().number
    actor = as_tenant(alice)
    services.number_reserve(number=number, tenant_id=alice.id, actor=actor)
    redis_client.client().script_flush()

    assigned = services.number_assign(number=number, tenant_id=alice.id, actor=actor)

    version, _epoch, entry = lease_cache.read_value(number)  # type: ignore[misc]
    assert (version, entry["state"]) == (assigned.number["version"], "ASSIGNED")


def counter(metric: Any, result: str) -> float:
    return float(metric.labels(result)._value.get())


def test_a_dead_redis_fails_every_write_quietly_and_the_action_stands(
    alice: Any, cache_redis: RedisProcess, round_trips: list[Any]
) -> None:
    number = NumberFactory().number
    actor = as_tenant(alice)
    cache_errors = counter(lease_cache.CACHE_WRITES, "error")
    ttl_errors = counter(reservation_ttl.TTL_WRITES, "error")
    cache_redis.kill()

    result = services.number_reserve(number=number, tenant_id=alice.id, actor=actor, idempotency_key=key())

    assert result.number["state"] == "RESERVED" and not result.replayed
    assert counter(lease_cache.CACHE_WRITES, "error") == cache_errors + 1
    assert counter(reservation_ttl.TTL_WRITES, "error") == ttl_errors + 1
    with pytest.raises(redis.RedisError):
        redis_client.client().ping()


def test_a_rest_mutation_sends_its_after_commit_writes_in_one_round_trip(alice: Any, round_trips: list[Any]) -> None:
    """The REST view opens the request's transaction itself (core.api.views), so it batches
    too: a reserve-by-criteria with an Idempotency-Key makes the idempotency GET and one
    pipeline (cache entry, TTL key, idempotency copy), as the gRPC path does."""
    from tests.api.conftest import Api, make_token

    NumberFactory()
    api, token = Api(), make_token("tenant.admin", alice)
    api.get("/api/tenant/v1/pools/", token)  # warm: the first request opens what every one reuses
    reply: list[Any] = []
    made = trips(
        round_trips,
        lambda: reply.append(
            api.post("/api/tenant/v1/reservations/", token, {"count": 1}, headers={"Idempotency-Key": key()})
        ),
    )
    assert reply[0].status == 201, reply[0].json
    assert made == 2
