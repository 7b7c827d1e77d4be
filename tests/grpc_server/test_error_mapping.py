"""Issue 13 items 8 and 9 over the live gRPC server: bad input is INVALID_ARGUMENT naming the
field, never UNAVAILABLE ("retry") or UNKNOWN with Python internals in the details."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from numbering.lifecycle import State
from numbering.models import Number
from tests.grpc_server.conftest import as_platform
from tests.grpc_server.test_rpcs import BFF, COMPLIANCE, error_of
from tests.numbering.helpers import number_in


def test_overlong_reason_is_invalid_argument_not_unavailable(grpc_server: Any, connect: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    bff, compliance = connect(grpc_server, BFF), connect(grpc_server, COMPLIANCE)
    too_long = "r" * 1000
    assert error_of(bff.Release, pb.ReleaseRequest(number=n.number, tenant_id=str(alice.id), reason=too_long)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_ERROR",
        {"field": "reason"},
    )
    assert error_of(compliance.Recall, pb.RecallRequest(number=n.number, reason=too_long))[2] == {"field": "reason"}
    assert as_platform(lambda: Number.objects.get(id=n.id)).state == State.ASSIGNED


def test_the_portal_may_not_choose_the_compliance_quarantine(grpc_server: Any, connect: Any, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    bff = connect(grpc_server, BFF)
    assert error_of(
        bff.Release, pb.ReleaseRequest(number=n.number, tenant_id=str(alice.id), reason="TENANT_DELETED")
    ) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_ERROR",
        {"field": "reason"},
    )
    reserved = as_platform(lambda: number_in(State.RESERVED, alice))
    assert error_of(bff.Assign, pb.AssignRequest(number=reserved.number, tenant_id=str(alice.id), lease_days=3650)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_ERROR",
        {"field": "lease_days"},
    )


def test_malformed_protobuf_is_invalid_argument_without_internals(grpc_server: Any, connect: Any, pki: Any) -> None:
    key, cert = pki.client(BFF)
    credentials = grpc.ssl_channel_credentials(pki.ca.read_bytes(), key, cert)
    with grpc.secure_channel(f"localhost:{grpc_server.port}", credentials) as channel:
        raw = channel.unary_unary("/numbering.v1.NumberingService/Lookup")  # bytes in, bytes out
        for garbage in (b"\xff\xff\xff\xff", b"\x0a\xff\x01", b"\x08"):
            code, reason, _ = error_of(raw, garbage)
            assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR")
            with pytest.raises(grpc.RpcError) as raised:
                raw(garbage)
            details = raised.value.details() or ""
            assert "Error" not in details and "google.protobuf" not in details and "Traceback" not in details
        # Identity still comes first: a CN off the allowlist learns nothing about the message.
    intruder_key, intruder_cert = pki.client("intruder")
    credentials = grpc.ssl_channel_credentials(pki.ca.read_bytes(), intruder_key, intruder_cert)
    with grpc.secure_channel(f"localhost:{grpc_server.port}", credentials) as channel:
        raw = channel.unary_unary("/numbering.v1.NumberingService/Lookup")
        assert error_of(raw, b"\xff\xff")[0] == grpc.StatusCode.UNAUTHENTICATED
