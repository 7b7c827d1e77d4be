"""ValidateLease through a real server: cache-first, prompt invalidation, expiry checked on
every answer, Redis down → PostgreSQL, PostgreSQL down → cache, both down → UNAVAILABLE."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from typing import Any

import grpc
import pytest
import redis
from django.conf import settings
from django.db import connection

from config.provider_states import move_lease_end
from core import redis_client
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc
from grpc_server.server import SERVICE_CONFIG_FILE
from numbering import lease_cache, services
from numbering.lease_lookup import (
    LEASE_EXPIRED,
    NOT_ASSIGNED,
    OK,
    UNAVAILABLE,
    WRONG_TENANT,
    Entry,
    WrongTenantCounter,
    answer_for,
)
from numbering.lifecycle import State
from numbering.models import Lease
from tests.grpc_server.conftest import as_platform, free_port
from tests.grpc_server.test_rpcs import error_of
from tests.numbering.helpers import OPS, number_in

Reason = pb.ValidateLeaseResponse.Reason


def until(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@pytest.fixture
def orchestrator(grpc_server: Any, connect: Any) -> Any:
    return connect(grpc_server, "sms-orchestrator")


def validate(stub: Any, number: str, tenant: Any) -> pb.ValidateLeaseResponse:
    return stub.ValidateLease(pb.ValidateLeaseRequest(number=number, tenant_id=str(tenant.id)), timeout=10)


def test_valid_after_assign_with_lease_details(orchestrator: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    lease = as_platform(lambda: Lease.objects.get(number=n, status="ACTIVE"))
    answer = validate(orchestrator, n.number, alice)
    assert (answer.valid, answer.reason) == (True, Reason.Value("OK"))
    assert answer.lease_id == str(lease.id)
    assert answer.expires_at.ToDatetime(tzinfo=UTC) == lease.expires_at
    assert (answer.kind, answer.operator_code) == (pb.MSISDN, "ROSHAN")
    assert validate(orchestrator, n.number, alice).valid  # second answer from the warm cache


def test_wrong_tenant_is_refused_without_lease_details_and_counted_per_tenant(
    orchestrator: Any, alice: Any, bob: Any
) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    minute = int(time.time() // 60)
    for _ in range(3):
        answer = validate(orchestrator, n.number, bob)
        assert (answer.valid, answer.reason, answer.lease_id) == (False, Reason.Value("WRONG_TENANT"), "")
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = [f"numbering:anomaly:wrong_tenant:{bob.id}:{m}" for m in (minute, minute + 1)]
    assert until(lambda: sum(int(client.get(k) or 0) for k in keys) == 3)
    ttl = max(client.ttl(k) for k in keys)
    assert 3500 < ttl <= 3600
    assert not client.keys(f"numbering:anomaly:wrong_tenant:{alice.id}:*")


def test_not_assigned_after_release_even_with_a_warm_cache(orchestrator: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    assert validate(orchestrator, n.number, alice).valid
    assert validate(orchestrator, n.number, alice).valid
    as_platform(lambda: services.number_release(number=n.number, actor=OPS))
    # The after-commit writer publishes the change; the worker drops its copy promptly.
    answer = until(lambda: (a := validate(orchestrator, n.number, alice)).reason != Reason.Value("OK") and a, 1.0)
    assert answer and (answer.valid, answer.reason) == (False, Reason.Value("NOT_ASSIGNED"))


def test_unknown_and_unassigned_numbers_are_normal_answers(orchestrator: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.AVAILABLE, alice))
    assert validate(orchestrator, n.number, alice).reason == Reason.Value("NOT_ASSIGNED")
    assert validate(orchestrator, "+93791234000", alice).reason == Reason.Value("UNKNOWN_NUMBER")
    code, reason, metadata = error_of(orchestrator.ValidateLease, pb.ValidateLeaseRequest(number=n.number))
    assert (code, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, {"field": "tenant_id"})
    code, _, metadata = error_of(
        orchestrator.ValidateLease, pb.ValidateLeaseRequest(number="x", tenant_id=str(alice.id))
    )
    assert (code, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, {"field": "number"})


def test_lease_expired_after_expiry_even_with_a_warm_cache(
    grpc_server: Any, orchestrator: Any, alice: Any, fake_clock: Any
) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    expires = fake_clock.now() + timedelta(seconds=1.5)
    move_lease_end(n.number, expires)
    # The worker hears of the change asynchronously: wait until it answers from the new entry.
    assert until(lambda: validate(orchestrator, n.number, alice).valid and n.number in grpc_server.worker.lookup._local)
    assert lease_cache.read_entry(n.number) is not None  # warm Redis
    fake_clock.advance(1.6)  # past expires_at: no longer valid, whatever the caches hold
    answer = validate(orchestrator, n.number, alice)
    assert (answer.valid, answer.reason) == (False, Reason.Value("LEASE_EXPIRED"))
    assert n.number in grpc_server.worker.lookup._local  # answered from the cache, not by refetching


def test_correct_answers_with_redis_stopped(start_server: Any, connect: Any, private_redis: Any, alice: Any) -> None:
    server = start_server(redis_url=private_redis.url)
    stub = connect(server)
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    assert validate(stub, n.number, alice).valid
    private_redis.stop()
    assert until(lambda: not server.worker.lookup.local_cache_active), "local cache must switch off without pub/sub"
    assert validate(stub, n.number, alice).valid  # PostgreSQL behind the open breaker
    as_platform(lambda: services.number_release(number=n.number, actor=OPS))
    answer = validate(stub, n.number, alice)
    assert (answer.valid, answer.reason) == (False, Reason.Value("NOT_ASSIGNED"))


class TcpProxy:
    """127.0.0.1:<port> → PostgreSQL; `stop()` makes the database unreachable through it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self.running = False
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


@pytest.fixture
def db_through_proxy(committed: None) -> Iterator[TcpProxy]:
    """Route the app role's connections (every thread's) through a proxy the test can cut."""
    db = settings.DATABASES["default"]
    proxy = TcpProxy((str(db["HOST"]), int(str(db["PORT"]))))
    original = (db["HOST"], db["PORT"])
    connection.close()
    db["HOST"], db["PORT"] = "127.0.0.1", str(proxy.port)
    try:
        yield proxy
    finally:
        proxy.stop()
        connection.close()
        db["HOST"], db["PORT"] = original


def test_cache_hit_served_with_postgres_unreachable_and_unavailable_on_a_miss(
    db_through_proxy: TcpProxy, start_server: Any, connect: Any, pki: Any, alice: Any
) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))  # the commit fills Redis
    other = as_platform(lambda: number_in(State.AVAILABLE, alice))
    connection.close()
    server = start_server()  # trusted: the cache-sync has applied both numbers (ADR 1200) ...
    redis.Redis.from_url(settings.REDIS_URL).delete(redis_client.lease_key(other.number))  # ... now a miss
    stub = connect(server)
    db_through_proxy.stop()
    answer = validate(stub, n.number, alice)  # from Redis: PostgreSQL is never asked
    assert (answer.valid, answer.reason) == (True, Reason.Value("OK"))
    code, reason, _ = error_of(
        stub.ValidateLease, pb.ValidateLeaseRequest(number=other.number, tenant_id=str(alice.id))
    )
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "SERVICE_UNAVAILABLE")

    # Calls that need the database say so with a retryable status too.
    assert error_of(stub.Lookup, pb.LookupRequest(number=other.number))[:2] == (
        grpc.StatusCode.UNAVAILABLE,
        "DATABASE_UNAVAILABLE",
    )

    # A client using the shipped service config retries UNAVAILABLE (3 attempts in all).
    config = SERVICE_CONFIG_FILE.read_text()
    policies = [m["retryPolicy"] for m in json.loads(config)["methodConfig"]]
    assert all(p["retryableStatusCodes"] == ["UNAVAILABLE"] for p in policies)
    before = UNAVAILABLE._value.get()
    key, cert = pki.client("sms-orchestrator")
    with grpc.secure_channel(
        f"localhost:{server.port}",
        grpc.ssl_channel_credentials(pki.ca.read_bytes(), key, cert),
        options=[("grpc.service_config", config), ("grpc.enable_retries", 1)],
    ) as channel:
        retrying = pb_grpc.NumberingServiceStub(channel)
        request = pb.ValidateLeaseRequest(number=other.number, tenant_id=str(alice.id))
        assert error_of(retrying.ValidateLease, request)[0] == grpc.StatusCode.UNAVAILABLE
    assert UNAVAILABLE._value.get() - before == 3


# --- the decision and the counter, without a server ---------------------------------------


def test_answer_never_valid_past_expiry_whatever_the_entry_says() -> None:
    entry = Entry(version=3, state="ASSIGNED", tenant_id="t", lease_id="l", expires_at=1_000_000_000, kind="MSISDN")
    assert answer_for(entry, "t", 999.9, "local").reason == OK
    assert answer_for(entry, "t", 1000.0, "local").reason == LEASE_EXPIRED
    assert answer_for(entry, "u", 999.9, "local").reason == WRONG_TENANT
    assert answer_for(Entry(version=1, state="ASSIGNED", tenant_id="t"), "t", 0, "db").reason == NOT_ASSIGNED


def test_wrong_tenant_counts_survive_a_redis_outage_until_the_next_flush() -> None:
    dead = WrongTenantCounter(f"redis://127.0.0.1:{free_port()}/0")
    dead.record("tenant-a", 120.0)
    dead.record("tenant-a", 121.0)
    assert dead.flush() == 0
    assert dead._pending == {("tenant-a", 2): 2}
    dead._redis_url = settings.REDIS_URL
    dead._client = None
    assert dead.flush() == 1
    assert redis.Redis.from_url(settings.REDIS_URL).get("numbering:anomaly:wrong_tenant:tenant-a:2") == b"2"
