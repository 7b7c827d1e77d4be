"""routing-engine's pact with numbering-service (written as its team would).

The routing engine picks the operator route for a sender number: it needs ValidateLease's
`valid`, `reason`, `kind` and `operator_code` (no route for a number the tenant may not
use), and Lookup's `kind` and `operator_code` when it warms its route table.
"""

from __future__ import annotations

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from tests.pacts.consumers.support import PactReplay, grpc_interaction, new_pact, write

CONSUMER = "routing-engine"
TENANT = "2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5f7a"
OTHER_TENANT = "4e6a8c0e-2f3b-4c5d-8e7f-9a1b3c5d7e9f"
LEASED, FOREIGN, FREE, UNKNOWN, LAPSED, LOOKED_UP = (
    "+93700020001",
    "+93700020002",
    "+93700020003",
    "+93700020004",
    "+93700020005",
    "+93760020006",
)
ASSIGNED = "a number assigned to the tenant"
Reason = pb.ValidateLeaseResponse.Reason


class RoutePlanner:
    """Chooses the operator route for a (sender, tenant) pair; None = do not route."""

    def __init__(self, stub: PactReplay) -> None:
        self.stub = stub

    def route(self, sender: str, tenant_id: str) -> str | None:
        answer = self.stub.call(
            "ValidateLease", pb.ValidateLeaseRequest(number=sender, tenant_id=tenant_id), pb.ValidateLeaseResponse
        )
        if not answer.valid:
            assert answer.reason in {
                Reason.WRONG_TENANT,
                Reason.NOT_ASSIGNED,
                Reason.UNKNOWN_NUMBER,
                Reason.LEASE_EXPIRED,
            }
            return None
        return f"{pb.NumberKind.Name(answer.kind)}:{answer.operator_code}"

    def warm(self, sender: str) -> tuple[str, str]:
        number = self.stub.call("Lookup", pb.LookupRequest(number=sender), pb.LookupResponse).number
        return pb.NumberKind.Name(number.kind), number.operator_code


def test_routing_engine_contract() -> None:
    pact = new_pact(CONSUMER)
    grpc_interaction(
        pact,
        "ValidateLease of a leased AWCC number, with its route",
        method="ValidateLease",
        request=pb.ValidateLeaseRequest(number=LEASED, tenant_id=TENANT),
        given=[(ASSIGNED, {"number": LEASED, "tenant_id": TENANT})],
        response={"valid": True, "reason": "OK", "kind": "MSISDN", "operator_code": "AWCC"},
    )
    for description, number, given, reason in [
        (
            "ValidateLease of a number leased to another tenant",
            FOREIGN,
            (ASSIGNED, {"number": FOREIGN, "tenant_id": OTHER_TENANT}),
            "WRONG_TENANT",
        ),
        ("ValidateLease of a number nobody holds", FREE, ("an available number", {"number": FREE}), "NOT_ASSIGNED"),
        ("ValidateLease of an unknown number", UNKNOWN, ("an unknown number", {"number": UNKNOWN}), "UNKNOWN_NUMBER"),
        (
            "ValidateLease of a number whose lease has run out",
            LAPSED,
            ("a number assigned to the tenant whose lease has run out", {"number": LAPSED, "tenant_id": TENANT}),
            "LEASE_EXPIRED",
        ),
    ]:
        grpc_interaction(
            pact,
            description,
            method="ValidateLease",
            request=pb.ValidateLeaseRequest(number=number, tenant_id=TENANT),
            given=[given],
            response={"valid": False, "reason": reason},
        )
    grpc_interaction(
        pact,
        "Lookup of an MTN number for the route table",
        method="Lookup",
        request=pb.LookupRequest(number=LOOKED_UP),
        given=[(ASSIGNED, {"number": LOOKED_UP, "tenant_id": TENANT})],
        response={"number": {"number": LOOKED_UP, "kind": "MSISDN", "operator_code": "MTN_AF"}},
    )

    stub = PactReplay(pact)
    planner = RoutePlanner(stub)
    assert planner.route(LEASED, TENANT) == "MSISDN:AWCC"
    assert [planner.route(n, TENANT) for n in (FOREIGN, FREE, UNKNOWN, LAPSED)] == [None] * 4
    assert planner.warm(LOOKED_UP) == ("MSISDN", "MTN_AF")
    stub.assert_every_interaction_was_used()
    write(pact)
