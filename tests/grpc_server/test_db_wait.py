"""A PostgreSQL that does not answer costs a gRPC caller a bounded wait and an UNAVAILABLE it
can count and retry, not a hang its own deadline ends (ADR 1504). The database is made to
not answer for real: another session holds the lock the call needs."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import psycopg
import pytest

from audit.models import AuditEvent
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from numbering.lifecycle import State
from numbering.models import Number
from tests.conftest import owner_dsn
from tests.grpc_server.conftest import as_platform
from tests.grpc_server.test_rpcs import BFF, error_of
from tests.numbering.helpers import number_in


@pytest.fixture
def bff(grpc_server: Any, connect: Any) -> Any:
    return connect(grpc_server, BFF)


@pytest.fixture
def orchestrator(grpc_server: Any, connect: Any) -> Any:
    return connect(grpc_server, "sms-orchestrator")


def test_a_mutation_stuck_on_the_database_answers_unavailable_and_its_retry_replays(
    bff: Any, alice: Any, settings: Any
) -> None:
    settings.GRPC_DB_WAIT_SECONDS = 1.0
    n = as_platform(lambda: number_in(State.AVAILABLE, alice))
    request = pb.ReserveRequest(number=n.number, tenant_id=str(alice.id), ttl_seconds=600, idempotency_key="wait-1")
    with psycopg.connect(owner_dsn()) as locker:
        locker.execute("SELECT 1 FROM numbering_number WHERE number = %s FOR UPDATE", [n.number])
        started = time.monotonic()
        code, reason, _ = error_of(bff.Reserve, request, timeout=10)
        took = time.monotonic() - started
        locker.rollback()  # the database answers again; the stuck unit of work goes on
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "SERVICE_UNAVAILABLE")
    assert 0.9 <= took < 3, took  # the budget, not the 10 s deadline or the 15 s statement timeout
    # The outcome was unknown: the same key either replays the commit or performs it once.
    reserved = bff.Reserve(request, timeout=10)
    assert reserved.number.state == pb.RESERVED and reserved.number.tenant_id == str(alice.id)
    again = bff.Reserve(request, timeout=10)
    assert again.reservation_id == reserved.reservation_id
    events = as_platform(
        lambda: AuditEvent.objects.filter(object_id__contains=n.number, action__icontains="reserve").count()
    )
    assert events == 1
    assert as_platform(lambda: Number.objects.get(id=n.id).state) == "RESERVED"


def test_the_wait_ends_before_the_callers_deadline(bff: Any, alice: Any, settings: Any) -> None:
    settings.GRPC_DB_WAIT_SECONDS = 30.0
    n = as_platform(lambda: number_in(State.AVAILABLE, alice))
    request = pb.ReserveRequest(number=n.number, tenant_id=str(alice.id), ttl_seconds=600, idempotency_key="wait-2")
    with psycopg.connect(owner_dsn()) as locker:
        locker.execute("SELECT 1 FROM numbering_number WHERE number = %s FOR UPDATE", [n.number])
        code, reason, _ = error_of(bff.Reserve, request, timeout=1.5)
        locker.rollback()
    # UNAVAILABLE from the server (counted, retried), not DEADLINE_EXCEEDED from the client.
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "SERVICE_UNAVAILABLE")


def test_a_validate_lease_fallback_the_database_does_not_answer_is_unavailable_in_time(
    orchestrator: Any, alice: Any, settings: Any
) -> None:
    settings.LEASE_DB_STATEMENT_TIMEOUT_MS = 10000  # only the wait budget can end it
    settings.LEASE_DB_WAIT_MS = 300
    unknown = "+93791999990"  # in no cache (the cache-sync fills Redis with every known number)
    locked = threading.Event()
    release = threading.Event()

    def hold_the_table() -> None:
        with psycopg.connect(owner_dsn()) as locker:
            locker.execute("LOCK TABLE numbering_number IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(20)
            locker.rollback()

    holder = threading.Thread(target=hold_the_table)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        code, reason, _ = error_of(
            orchestrator.ValidateLease, pb.ValidateLeaseRequest(number=unknown, tenant_id=str(alice.id)), timeout=5
        )
        took = time.monotonic() - started
    finally:
        release.set()
        holder.join(30)
    assert code == grpc.StatusCode.UNAVAILABLE
    assert took < 2, took
    # The database answers again: the same question gets its answer.
    answer = orchestrator.ValidateLease(pb.ValidateLeaseRequest(number=unknown, tenant_id=str(alice.id)), timeout=5)
    assert answer.reason == pb.ValidateLeaseResponse.UNKNOWN_NUMBER
