"""sms-orchestrator's pact with numbering-service (written as its team would).

On every message the orchestrator asks ValidateLease(number, tenant) and sends only on
`valid`; it records `lease_id` on the message for billing, and maps the refusal reason to
the error its API returns. It uses Lookup when an operator asks who holds a sender number.
Nothing else of the answers matters to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from tests.pacts.consumers.support import PactReplay, grpc_interaction, new_pact, timestamp_like, uuid_like, write

CONSUMER = "sms-orchestrator"
TENANT = "0f3b6c2a-1d4e-4a5b-8c6d-7e8f9a0b1c2d"
OTHER_TENANT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
LEASED, FOREIGN, FREE, UNKNOWN, LAPSED, LOOKED_UP = (
    "+93790010001",
    "+93790010002",
    "+93790010003",
    "+93790010004",
    "+93790010005",
    "+93790010006",
)
ASSIGNED = "a number assigned to the tenant"


@dataclass
class Decision:
    send: bool
    lease_id: str = ""
    error: str = ""


class LeaseGate:
    """The orchestrator's guard in front of every outbound SMS."""

    ERRORS = {
        "WRONG_TENANT": "SENDER_NOT_YOURS",
        "NOT_ASSIGNED": "SENDER_NOT_ACTIVE",
        "UNKNOWN_NUMBER": "SENDER_UNKNOWN",
        "LEASE_EXPIRED": "SENDER_LEASE_EXPIRED",
    }

    def __init__(self, stub: PactReplay) -> None:
        self.stub = stub

    def check(self, number: str, tenant_id: str) -> Decision:
        answer = self.stub.call(
            "ValidateLease", pb.ValidateLeaseRequest(number=number, tenant_id=tenant_id), pb.ValidateLeaseResponse
        )
        if answer.valid:
            return Decision(True, lease_id=answer.lease_id)
        return Decision(False, error=self.ERRORS[pb.ValidateLeaseResponse.Reason.Name(answer.reason)])

    def holder(self, number: str) -> str:
        return self.stub.call("Lookup", pb.LookupRequest(number=number), pb.LookupResponse).number.tenant_id


def _refused(reason: str) -> dict[str, object]:
    return {"valid": False, "reason": reason}


def test_sms_orchestrator_contract() -> None:
    pact = new_pact(CONSUMER)
    grpc_interaction(
        pact,
        "ValidateLease of a number leased to the sending tenant",
        method="ValidateLease",
        request=pb.ValidateLeaseRequest(number=LEASED, tenant_id=TENANT),
        given=[(ASSIGNED, {"number": LEASED, "tenant_id": TENANT})],
        response={"valid": True, "reason": "OK", "lease_id": uuid_like()},
    )
    grpc_interaction(
        pact,
        "ValidateLease of a number leased to another tenant",
        method="ValidateLease",
        request=pb.ValidateLeaseRequest(number=FOREIGN, tenant_id=TENANT),
        given=[(ASSIGNED, {"number": FOREIGN, "tenant_id": OTHER_TENANT})],
        response=_refused("WRONG_TENANT"),
    )
    grpc_interaction(
        pact,
        "ValidateLease of a number nobody holds",
        method="ValidateLease",
        request=pb.ValidateLeaseRequest(number=FREE, tenant_id=TENANT),
        given=[("an available number", {"number": FREE})],
        response=_refused("NOT_ASSIGNED"),
    )
    grpc_interaction(
        pact,
        "ValidateLease of a number numbering-service does not know",
        method="ValidateLease",
        request=pb.ValidateLeaseRequest(number=UNKNOWN, tenant_id=TENANT),
        given=[("an unknown number", {"number": UNKNOWN})],
        response=_refused("UNKNOWN_NUMBER"),
    )
    grpc_interaction(
        pact,
        "ValidateLease of a number whose lease has run out",
        method="ValidateLease",
        request=pb.ValidateLeaseRequest(number=LAPSED, tenant_id=TENANT),
        given=[("a number assigned to the tenant whose lease has run out", {"number": LAPSED, "tenant_id": TENANT})],
        response=_refused("LEASE_EXPIRED"),
    )
    grpc_interaction(
        pact,
        "Lookup of a leased number",
        method="Lookup",
        request=pb.LookupRequest(number=LOOKED_UP),
        given=[(ASSIGNED, {"number": LOOKED_UP, "tenant_id": TENANT})],
        response={
            "number": {
                "number": LOOKED_UP,
                "state": "ASSIGNED",
                "tenant_id": TENANT,
                "lease": {"expires_at": timestamp_like()},
            }
        },
    )

    stub = PactReplay(pact)
    gate = LeaseGate(stub)
    allowed = gate.check(LEASED, TENANT)
    assert allowed.send and allowed.lease_id
    assert gate.check(FOREIGN, TENANT) == Decision(False, error="SENDER_NOT_YOURS")
    assert gate.check(FREE, TENANT) == Decision(False, error="SENDER_NOT_ACTIVE")
    assert gate.check(UNKNOWN, TENANT) == Decision(False, error="SENDER_UNKNOWN")
    assert gate.check(LAPSED, TENANT) == Decision(False, error="SENDER_LEASE_EXPIRED")
    assert gate.holder(LOOKED_UP) == TENANT
    stub.assert_every_interaction_was_used()
    write(pact)
