"""sender-id-registry's pact with numbering-service (written as its team would).

The registry lists which sender IDs (long numbers and short codes) a tenant may register.
It calls Lookup only, and relies on `kind`, `state`, `tenant_id`, and for short codes on
`vanity` / `vanity_tier` (vanity codes are shown with their tier). An unknown number is a
NOT_FOUND refusal with ErrorInfo reason NUMBER_NOT_FOUND.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from tests.pacts.consumers.support import PactReplay, Refused, grpc_interaction, new_pact, write

CONSUMER = "sender-id-registry"
TENANT = "6a8c0e2a-4b5d-4e6f-8a9b-0c1d2e3f4a5b"
MSISDN, VANITY, SHORT, UNKNOWN = "+93720030001", "7777", "4031", "+93720030009"


@dataclass
class SenderId:
    value: str
    kind: str
    registrable_by: str | None
    vanity_tier: str | None


class Registry:
    def __init__(self, stub: PactReplay) -> None:
        self.stub = stub

    def describe(self, value: str) -> SenderId | None:
        try:
            number = self.stub.call("Lookup", pb.LookupRequest(number=value), pb.LookupResponse).number
        except Refused as refused:
            if refused.code == grpc.StatusCode.NOT_FOUND and refused.reason == "NUMBER_NOT_FOUND":
                return None
            raise
        holder = number.tenant_id if number.state == pb.ASSIGNED else None
        return SenderId(
            number.number, pb.NumberKind.Name(number.kind), holder, number.vanity_tier if number.vanity else None
        )


def test_sender_id_registry_contract() -> None:
    pact = new_pact(CONSUMER)
    grpc_interaction(
        pact,
        "Lookup of a long number assigned to a tenant",
        method="Lookup",
        request=pb.LookupRequest(number=MSISDN),
        given=[("a number assigned to the tenant", {"number": MSISDN, "tenant_id": TENANT})],
        response={
            "number": {"number": MSISDN, "kind": "MSISDN", "state": "ASSIGNED", "tenant_id": TENANT, "vanity": False}
        },
    )
    grpc_interaction(
        pact,
        "Lookup of a vanity short code assigned to a tenant",
        method="Lookup",
        request=pb.LookupRequest(number=VANITY),
        given=[("a number assigned to the tenant", {"number": VANITY, "tenant_id": TENANT, "vanity_tier": "GOLD"})],
        response={
            "number": {
                "number": VANITY,
                "kind": "SHORT_CODE",
                "state": "ASSIGNED",
                "tenant_id": TENANT,
                "vanity": True,
                "vanity_tier": "GOLD",
            }
        },
    )
    grpc_interaction(
        pact,
        "Lookup of a standard short code nobody holds",
        method="Lookup",
        request=pb.LookupRequest(number=SHORT),
        given=[("an available number", {"number": SHORT})],
        response={"number": {"number": SHORT, "kind": "SHORT_CODE", "state": "AVAILABLE", "vanity": False}},
    )
    grpc_interaction(
        pact,
        "Lookup of an unknown number",
        method="Lookup",
        request=pb.LookupRequest(number=UNKNOWN),
        given=[("an unknown number", {"number": UNKNOWN})],
        refusal=(grpc.StatusCode.NOT_FOUND, "NUMBER_NOT_FOUND"),
    )

    stub = PactReplay(pact)
    registry = Registry(stub)
    assert registry.describe(MSISDN) == SenderId(MSISDN, "MSISDN", TENANT, None)
    assert registry.describe(VANITY) == SenderId(VANITY, "SHORT_CODE", TENANT, "GOLD")
    assert registry.describe(SHORT) == SenderId(SHORT, "SHORT_CODE", None, None)
    assert registry.describe(UNKNOWN) is None
    stub.assert_every_interaction_was_used()
    write(pact)
