"""Every RPC's success and error codes through a real server over real mTLS."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from numbering.lifecycle import State
from numbering.models import Number
from tests.factories import NumberFactory
from tests.grpc_server.conftest import as_platform
from tests.numbering.helpers import number_in

BFF = "customer-portal-bff"
COMPLIANCE = "compliance-service"


def error_of(call: Any, *args: Any, **kwargs: Any) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """Make the call expecting failure; return (status, ErrorInfo reason, ErrorInfo metadata)."""
    with pytest.raises(grpc.RpcError) as raised:
        call(*args, **kwargs)
    err = raised.value
    status = rpc_status.from_call(err)
    reason, metadata = "", {}
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reason, metadata = info.reason, dict(info.metadata)
                assert info.domain == "numbering.v1"
    return err.code(), reason, metadata


@pytest.fixture
def bff(grpc_server: Any, connect: Any) -> Any:
    return connect(grpc_server, BFF)


def test_reserve_then_assign_then_lookup_round_trip(bff: Any, alice: Any) -> None:
    n = NumberFactory()
    reserved = bff.Reserve(pb.ReserveRequest(number=n.number, tenant_id=str(alice.id), ttl_seconds=600))
    assert reserved.number.state == pb.RESERVED
    assert reserved.number.tenant_id == str(alice.id)
    assert reserved.reservation_id and reserved.expires_at.seconds > 0
    assigned = bff.Assign(
        pb.AssignRequest(
            number=n.number,
            tenant_id=str(alice.id),
            reservation_id=reserved.reservation_id,
            lease_days=7,
            auto_renew=False,
        )
    )
    assert assigned.number.state == pb.ASSIGNED
    assert assigned.lease.tenant_id == str(alice.id)
    assert assigned.lease.auto_renew is False
    assert assigned.lease.expires_at.seconds - assigned.lease.starts_at.seconds == 7 * 86400
    found = bff.Lookup(pb.LookupRequest(number="0" + n.number[3:]))  # national format accepted
    assert found.number.number == n.number
    assert found.number.kind == pb.MSISDN
    assert found.number.operator_code == "ROSHAN"
    assert found.number.lease.lease_id == assigned.lease.lease_id
    assert found.number.version == assigned.number.version


def test_mutations_are_recorded_as_the_calling_service(bff: Any, alice: Any) -> None:
    from audit.models import AuditEvent

    n = NumberFactory()
    bff.Reserve(pb.ReserveRequest(number=n.number, tenant_id=str(alice.id)))
    actors = as_platform(lambda: list(AuditEvent.objects.filter(object_id=n.number).values_list("actor", flat=True)))
    assert actors == [f"service:{BFF}:tenant:{alice.id}"]  # the CN, scoped by the tenant it acts for


def test_lookup_of_unknown_number_is_not_found(bff: Any) -> None:
    assert error_of(bff.Lookup, pb.LookupRequest(number="+93791111111"))[:2] == (
        grpc.StatusCode.NOT_FOUND,
        "NUMBER_NOT_FOUND",
    )


def test_malformed_number_is_invalid_argument_naming_the_field(bff: Any) -> None:
    code, reason, metadata = error_of(bff.Lookup, pb.LookupRequest(number="12ab"))
    assert (code, reason, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR", {"field": "number"})


def test_reserve_refusals_map_to_their_status(bff: Any, alice: Any, bob: Any) -> None:
    n = NumberFactory()
    request = pb.ReserveRequest(number=n.number, tenant_id=str(alice.id))
    assert error_of(bff.Reserve, pb.ReserveRequest(number="+93790000001", tenant_id=str(alice.id)))[:2] == (
        grpc.StatusCode.NOT_FOUND,
        "NUMBER_NOT_FOUND",
    )
    assert error_of(bff.Reserve, pb.ReserveRequest(number=n.number, tenant_id=str(alice.id), expected_version=99))[
        :2
    ] == (grpc.StatusCode.ABORTED, "CONFLICT")
    assert error_of(bff.Reserve, pb.ReserveRequest(number=n.number, tenant_id="not-a-uuid"))[:2] == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_ERROR",
    )
    assert error_of(bff.Reserve, pb.ReserveRequest(number=n.number, tenant_id=str(uuid.uuid4())))[:2] == (
        grpc.StatusCode.NOT_FOUND,
        "TENANT_NOT_FOUND",
    )
    bff.Reserve(request)
    assert error_of(bff.Reserve, pb.ReserveRequest(number=n.number, tenant_id=str(bob.id)))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert as_platform(lambda: Number.objects.get(id=n.id)).tenant_id == alice.id


def test_reserve_over_quota_is_resource_exhausted(bff: Any, alice: Any) -> None:
    from pools.models import TenantPool

    as_platform(lambda: TenantPool.objects.filter(tenant=alice).update(quota_msisdn=1))
    first, second = NumberFactory(), NumberFactory()
    bff.Reserve(pb.ReserveRequest(number=first.number, tenant_id=str(alice.id)))
    assert error_of(bff.Reserve, pb.ReserveRequest(number=second.number, tenant_id=str(alice.id)))[:2] == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
    )


def test_idempotency_key_from_field_or_metadata_replays_and_refuses_reuse(bff: Any, alice: Any, bob: Any) -> None:
    n = NumberFactory()
    first = bff.Reserve(pb.ReserveRequest(number=n.number, tenant_id=str(alice.id), idempotency_key="k-1"))
    again = bff.Reserve(
        pb.ReserveRequest(number=n.number, tenant_id=str(alice.id)), metadata=[("idempotency-key", "k-1")]
    )
    assert again.SerializeToString() == first.SerializeToString()
    assert error_of(
        bff.Reserve, pb.ReserveRequest(number=n.number, tenant_id=str(alice.id), idempotency_key="k-1", ttl_seconds=60)
    )[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "IDEMPOTENCY_KEY_REUSED")
    # The BFF's keys are scoped per tenant: bob's "k-1" is bob's own request (the number is taken).
    assert error_of(bff.Reserve, pb.ReserveRequest(number=n.number, tenant_id=str(bob.id), idempotency_key="k-1"))[
        :2
    ] == (grpc.StatusCode.FAILED_PRECONDITION, "INVALID_TRANSITION")
    code, _, metadata = error_of(
        bff.Reserve,
        pb.ReserveRequest(number=n.number, tenant_id=str(alice.id), idempotency_key="a"),
        metadata=[("idempotency-key", "b")],
    )
    assert (code, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, {"field": "idempotency_key"})


def test_idempotency_keys_are_scoped_to_the_caller_cn(grpc_server: Any, connect: Any, alice: Any) -> None:
    n = NumberFactory()
    connect(grpc_server, BFF).Reserve(pb.ReserveRequest(number=n.number, tenant_id=str(alice.id), idempotency_key="k"))
    # The same key from another service is a new request (and the number is no longer available).
    compliance = connect(grpc_server, COMPLIANCE)
    recalled = compliance.Recall(pb.RecallRequest(number=n.number, reason="test", idempotency_key="k"))
    assert recalled.number.state == pb.AVAILABLE


def test_assign_refusals_map_to_their_status(bff: Any, alice: Any, bob: Any) -> None:
    n = as_platform(lambda: number_in(State.RESERVED, alice))
    assert error_of(bff.Assign, pb.AssignRequest(number=n.number, tenant_id=str(bob.id)))[:2] == (
        grpc.StatusCode.PERMISSION_DENIED,
        "WRONG_TENANT",
    )
    assert error_of(
        bff.Assign, pb.AssignRequest(number=n.number, tenant_id=str(alice.id), reservation_id=str(uuid.uuid4()))
    )[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "RESERVATION_EXPIRED")
    assert error_of(bff.Assign, pb.AssignRequest(number=n.number, tenant_id=str(alice.id), lease_days=-1))[:2] == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_ERROR",
    )
    assert error_of(bff.Assign, pb.AssignRequest(number="+93790000002", tenant_id=str(alice.id)))[0] == (
        grpc.StatusCode.NOT_FOUND
    )
    assert as_platform(lambda: Number.objects.get(id=n.id)).state == State.RESERVED


def test_release_of_assigned_number_quarantines_it_and_refusals_map(bff: Any, alice: Any, bob: Any) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    assert error_of(bff.Release, pb.ReleaseRequest(number=n.number, tenant_id=str(bob.id)))[:2] == (
        grpc.StatusCode.PERMISSION_DENIED,
        "WRONG_TENANT",
    )
    released = bff.Release(pb.ReleaseRequest(number=n.number, tenant_id=str(alice.id), reason="customer left"))
    assert released.number.state == pb.QUARANTINED
    assert released.number.quarantine_until.seconds > 0
    assert error_of(bff.Release, pb.ReleaseRequest(number=n.number, tenant_id=str(alice.id)))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert error_of(bff.Release, pb.ReleaseRequest(number="+93790000003", tenant_id=str(alice.id)))[0] == (
        grpc.StatusCode.NOT_FOUND
    )


def test_recall_by_compliance_and_its_refusals(grpc_server: Any, connect: Any, alice: Any) -> None:
    compliance = connect(grpc_server, COMPLIANCE)
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    stale = as_platform(lambda: Number.objects.get(id=n.id)).version - 1
    assert error_of(compliance.Recall, pb.RecallRequest(number=n.number, expected_version=stale))[:2] == (
        grpc.StatusCode.ABORTED,
        "CONFLICT",
    )
    recalled = compliance.Recall(pb.RecallRequest(number=n.number, reason="FRAUD"))
    assert recalled.number.state == pb.QUARANTINED
    assert error_of(compliance.Recall, pb.RecallRequest(number=n.number))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert error_of(compliance.Recall, pb.RecallRequest(number="4"))[:2] == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_ERROR",
    )


# --- authentication and authorisation ------------------------------------------------------


def test_cn_not_on_the_allowlist_is_unauthenticated(grpc_server: Any, connect: Any) -> None:
    stub = connect(grpc_server, "intruder")
    assert error_of(stub.Lookup, pb.LookupRequest(number="+93791234567"))[:2] == (
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )


def test_allowlisted_cn_calling_a_method_outside_its_list_is_permission_denied(
    grpc_server: Any, connect: Any, alice: Any
) -> None:
    n = NumberFactory()
    orchestrator = connect(grpc_server, "sms-orchestrator")
    assert error_of(orchestrator.Reserve, pb.ReserveRequest(number=n.number, tenant_id=str(alice.id)))[:2] == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    )
    billing = connect(grpc_server, "billing-service")
    assert error_of(billing.ValidateLease, pb.ValidateLeaseRequest(number=n.number, tenant_id=str(alice.id)))[0] == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert as_platform(lambda: Number.objects.get(id=n.id)).state == State.AVAILABLE


def test_certificate_from_another_ca_is_rejected(grpc_server: Any, connect: Any, pki: Any) -> None:
    stub = connect(grpc_server, key_cert=pki.client("rogue"))
    with pytest.raises(grpc.RpcError) as raised:
        stub.Lookup(pb.LookupRequest(number="+93791234567"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake fails


def test_client_without_certificate_is_rejected(grpc_server: Any, pki: Any) -> None:
    from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc

    with (
        grpc.secure_channel(
            f"localhost:{grpc_server.port}", grpc.ssl_channel_credentials(pki.ca.read_bytes())
        ) as channel,
        pytest.raises(grpc.RpcError) as raised,
    ):
        pb_grpc.NumberingServiceStub(channel).Lookup(pb.LookupRequest(number="+93791234567"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_is_refused_when_tls_is_configured_even_with_insecure_set(start_server: Any) -> None:
    from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc

    server = start_server(insecure=True)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, pytest.raises(grpc.RpcError) as raised:
        pb_grpc.NumberingServiceStub(channel).Lookup(pb.LookupRequest(number="+93791234567"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_permissions_override_replaces_the_default_matrix(start_server: Any, connect: Any, alice: Any) -> None:
    server = start_server(permissions={"billing-service": frozenset({"ValidateLease"})})
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    answer = connect(server, "billing-service").ValidateLease(
        pb.ValidateLeaseRequest(number=n.number, tenant_id=str(alice.id))
    )
    assert answer.valid
    assert error_of(connect(server, "sms-orchestrator").Lookup, pb.LookupRequest(number=n.number))[0] == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_health_and_reflection_are_served(grpc_server: Any, pki: Any) -> None:
    key, cert = pki.client("sms-orchestrator")
    credentials = grpc.ssl_channel_credentials(pki.ca.read_bytes(), key, cert)
    with grpc.secure_channel(f"localhost:{grpc_server.port}", credentials) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "numbering.v1.NumberingService"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == (
                health_pb2.HealthCheckResponse.SERVING
            )
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for r in responses for s in r.list_services_response.service}
        assert "numbering.v1.NumberingService" in names


# --- concurrency -----------------------------------------------------------------------------


def test_hundred_concurrent_reserves_of_one_number_one_wins(
    grpc_server: Any, connect: Any, alice: Any, bob: Any
) -> None:
    n = NumberFactory()
    stubs = [connect(grpc_server, BFF) for _ in range(4)]
    tenants = [str(alice.id), str(bob.id)]

    def reserve(i: int) -> grpc.StatusCode:
        try:
            stubs[i % 4].Reserve(pb.ReserveRequest(number=n.number, tenant_id=tenants[i % 2]), timeout=60)
        except grpc.RpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(100) as pool:
        codes = list(pool.map(reserve, range(100)))
    assert codes.count(grpc.StatusCode.OK) == 1
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED}
    number = as_platform(lambda: Number.objects.get(id=n.id))
    assert number.state == State.RESERVED and number.version == 2
    assert as_platform(lambda: number.reservations.count()) == 1


def test_request_id_from_metadata_and_overlong_idempotency_key(bff: Any, alice: Any) -> None:
    n = NumberFactory()
    found = bff.Lookup(pb.LookupRequest(number=n.number), metadata=[("x-request-id", "req-42")])
    assert found.number.number == n.number
    code, _, metadata = error_of(
        bff.Reserve, pb.ReserveRequest(number=n.number, tenant_id=str(alice.id), idempotency_key="k" * 201)
    )
    assert (code, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, {"field": "idempotency_key"})


def test_reserve_and_assign_of_a_suspended_contracts_number_fail_precondition_contract_suspended(
    bff: Any, alice: Any
) -> None:
    from contracts.services import contract_suspend
    from tests.contracts.test_contract_wind_down import OPS, contract_with_numbers

    contract, (number,) = contract_with_numbers(NumberFactory().pool)
    contract_suspend(contract_id=contract.id, actor=OPS)
    reserve = error_of(bff.Reserve, pb.ReserveRequest(number=number.number, tenant_id=str(alice.id)))
    assign = error_of(bff.Assign, pb.AssignRequest(number=number.number, tenant_id=str(alice.id)))
    assert reserve[:2] == assign[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "CONTRACT_SUSPENDED")
