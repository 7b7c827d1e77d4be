"""Issue 16 part 5: ExtendReservation over gRPC, through a real server over real mTLS
(customer-portal-bff, a tenant-acting CN). ADR 1640."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from audit.models import AuditEvent
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from numbering import reservation_ttl
from numbering.lifecycle import State
from numbering.models import Number, Reservation
from tests.grpc_server.conftest import as_platform
from tests.grpc_server.test_rpcs import BFF, error_of
from tests.grpc_server.test_tenant_binding import TENANT_ID_REQUIRED
from tests.numbering.helpers import number_in


@pytest.fixture
def bff(grpc_server: Any, connect: Any) -> Any:
    return connect(grpc_server, BFF)


def _row(n: Number) -> Number:
    return as_platform(lambda: Number.objects.get(id=n.id))


def _reservation(n: Number) -> Reservation:
    return as_platform(lambda: Reservation.objects.select_related("number").get(number_id=n.id, status="ACTIVE"))


def _extensions(n: Number) -> int:
    return as_platform(lambda: AuditEvent.objects.filter(object_id=n.number, action="extend_reservation").count())


def _ts(value: Any) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def test_extend_moves_the_deadline_the_reservation_and_the_redis_ttl_key(bff: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.RESERVED, alice))
    reservation = _reservation(n)
    key = reservation_ttl.ttl_key(n.number, reservation.id)
    r = reservation_ttl.client()
    assert 0 < r.pttl(key) <= 900_000  # the pool default TTL from the reserve

    reply = bff.ExtendReservation(
        pb.ExtendReservationRequest(number=n.number, tenant_id=str(alice.id), ttl_seconds=7200)
    )
    row = _row(n)
    assert row.reserved_until is not None
    assert reply.number.state == pb.RESERVED and reply.number.tenant_id == str(alice.id)
    assert reply.number.reserved_until.ToDatetime(tzinfo=UTC) == row.reserved_until
    assert reply.number.version == n.version + 1
    assert reply.reservation_id == str(reservation.id)
    assert reply.expires_at.ToDatetime(tzinfo=UTC) == row.reserved_until == _reservation(n).expires_at
    # Real Redis: the same key now expires at the new deadline (written after commit).
    assert 7_100_000 < r.pttl(key) <= 7_200_000
    assert r.execute_command("PEXPIRETIME", key) == int(row.reserved_until.timestamp() * 1000)


def test_extend_to_an_absolute_deadline(bff: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.RESERVED, alice))
    until = _reservation(n).created_at + timedelta(hours=3)
    reply = bff.ExtendReservation(
        pb.ExtendReservationRequest(number=n.number, tenant_id=str(alice.id), until=_ts(until))
    )
    assert reply.number.reserved_until.ToDatetime(tzinfo=UTC) == until == _row(n).reserved_until


def test_replay_answers_the_same_and_extends_once(bff: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.RESERVED, alice))
    request = pb.ExtendReservationRequest(number=n.number, tenant_id=str(alice.id), ttl_seconds=3600)
    first = bff.ExtendReservation(request, metadata=[("idempotency-key", "ext-1")])
    again = bff.ExtendReservation(request, metadata=[("idempotency-key", "ext-1")])
    assert again == first
    assert _row(n).version == n.version + 1
    assert _extensions(n) == 1
    other = pb.ExtendReservationRequest(number=n.number, tenant_id=str(alice.id), ttl_seconds=7200)
    code, reason, _ = error_of(bff.ExtendReservation, other, metadata=[("idempotency-key", "ext-1")])
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "IDEMPOTENCY_KEY_REUSED")
    assert _extensions(n) == 1


def test_over_the_cap_is_refused_naming_the_field(bff: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.RESERVED, alice))
    cap = _reservation(n).created_at + timedelta(hours=24)
    request = pb.ExtendReservationRequest(
        number=n.number, tenant_id=str(alice.id), until=_ts(cap + timedelta(seconds=1))
    )
    assert error_of(bff.ExtendReservation, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_ERROR",
        {"field": "until"},
    )
    too_long = pb.ExtendReservationRequest(number=n.number, tenant_id=str(alice.id), ttl_seconds=86401)
    assert error_of(bff.ExtendReservation, too_long)[2] == {"field": "ttl_seconds"}
    assert _row(n).reserved_until == n.reserved_until
    assert _extensions(n) == 0


def test_another_tenants_reservation_hits_the_holder_guard(bff: Any, alice: Any, bob: Any) -> None:
    n = as_platform(lambda: number_in(State.RESERVED, alice))
    request = pb.ExtendReservationRequest(number=n.number, tenant_id=str(bob.id), ttl_seconds=3600)
    assert error_of(bff.ExtendReservation, request)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "WRONG_TENANT")
    assert _row(n).reserved_until == n.reserved_until
    no_tenant = pb.ExtendReservationRequest(number=n.number, ttl_seconds=3600)
    assert error_of(bff.ExtendReservation, no_tenant) == TENANT_ID_REQUIRED
    assert _extensions(n) == 0


def test_an_expired_reservation_cannot_be_extended(bff: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.RESERVED, alice, due=True))
    request = pb.ExtendReservationRequest(number=n.number, tenant_id=str(alice.id), ttl_seconds=3600)
    assert error_of(bff.ExtendReservation, request)[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESERVATION_EXPIRED",
    )
    assert _row(n).reserved_until == n.reserved_until


def test_a_cn_without_the_method_is_refused(grpc_server: Any, connect: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.RESERVED, alice))
    orchestrator = connect(grpc_server, "sms-orchestrator")
    request = pb.ExtendReservationRequest(number=n.number, tenant_id=str(alice.id), ttl_seconds=3600)
    assert error_of(orchestrator.ExtendReservation, request)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert _extensions(n) == 0
