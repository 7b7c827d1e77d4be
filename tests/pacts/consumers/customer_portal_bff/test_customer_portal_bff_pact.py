"""customer-portal-bff's pact with numbering-service (written as its team would).

The portal's backend drives a tenant's numbers two ways:
- gRPC (its own certificate CN): Reserve, ExtendReservation, Assign and Release, showing the
  tenant the refusal behind a failed call from the ErrorInfo reason;
- the tenant REST API with the signed-in user's JWT: search available numbers, reserve n
  numbers by criteria, list leases, turn auto-renew off.
"""

from __future__ import annotations

from typing import Any

import grpc
import requests
from google.protobuf.timestamp_pb2 import Timestamp
from pact import generate, match

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from tests.pacts.consumers.support import (
    EXAMPLE_JWT,
    PactReplay,
    Refused,
    bearer,
    grpc_interaction,
    new_pact,
    timestamp_like,
    uuid_like,
    write,
)

CONSUMER = "customer-portal-bff"
TENANT = "8c0e2a4c-6d7f-4a8b-9c0d-1e2f3a4b5c6d"
OTHER_TENANT = "1b3d5f7b-9a0c-4e2d-8f4a-6b8c0d2e4f6a"
T = "/api/tenant/v1"
FREE, TAKEN, RESERVED, FOREIGN_RESERVED, ASSIGNED, UNKNOWN, STALE = (
    "+93790040001",
    "+93790040002",
    "+93790040003",
    "+93790040004",
    "+93790040005",
    "+93790040006",
    "+93790040007",
)
SEARCHABLE, BY_CRITERIA, LEASED = "+93790040201", "+93790040101", "+93790040301"
EXTENDED, OVER_CAP = "+93790040008", "+93790040009"
FAR_FUTURE = Timestamp(seconds=4102444800)  # 2100-01-01: always past the 24 h cap
LEASE_ID = "5d7f9b1d-3e4f-4a6b-8c9d-0e1f2a3b4c5d"


class PortalNumbers:
    """What the portal backend does when a tenant clicks reserve / assign / release."""

    def __init__(self, stub: PactReplay) -> None:
        self.stub = stub

    def _call(self, method: str, request: Any, response_type: Any) -> tuple[Any, str]:
        try:
            return self.stub.call(method, request, response_type), ""
        except Refused as refused:
            assert refused.domain == "numbering.v1"
            return None, f"{refused.code.name}/{refused.reason}"

    def reserve(self, number: str, expected_version: int = 0) -> tuple[Any, str]:
        request = pb.ReserveRequest(number=number, tenant_id=TENANT, expected_version=expected_version)
        return self._call("Reserve", request, pb.ReserveResponse)

    def extend(self, number: str, *, ttl_seconds: int = 0, until: Timestamp | None = None) -> tuple[Any, str]:
        request = pb.ExtendReservationRequest(number=number, tenant_id=TENANT, ttl_seconds=ttl_seconds, until=until)
        return self._call("ExtendReservation", request, pb.ExtendReservationResponse)

    def assign(self, number: str) -> tuple[Any, str]:
        return self._call("Assign", pb.AssignRequest(number=number, tenant_id=TENANT), pb.AssignResponse)

    def release(self, number: str) -> tuple[Any, str]:
        return self._call("Release", pb.ReleaseRequest(number=number, tenant_id=TENANT), pb.ReleaseResponse)


class TenantApi:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.headers = base, {"Authorization": token}

    def search(self, prefix: str) -> list[str]:
        reply = requests.get(
            f"{self.base}{T}/numbers/available/", params={"prefix": prefix}, headers=self.headers, timeout=5
        )
        reply.raise_for_status()
        return [n["number"] for n in reply.json()["results"]]

    def reserve_matching(self, count: int, prefix: str) -> list[str]:
        body = {"count": count, "kind": "MSISDN", "prefix": prefix}
        reply = requests.post(f"{self.base}{T}/reservations/", json=body, headers=self.headers, timeout=5)
        assert reply.status_code == 201, reply.text
        return [r["reservation"]["reservation_id"] for r in reply.json()["results"]]

    def leases(self) -> list[dict[str, Any]]:
        reply = requests.get(f"{self.base}{T}/leases/", headers=self.headers, timeout=5)
        reply.raise_for_status()
        return reply.json()["results"]

    def auto_renew_off(self, lease_id: str) -> bool:
        url = f"{self.base}{T}/leases/{lease_id}/auto-renew/"
        reply = requests.post(url, json={"auto_renew": False}, headers=self.headers, timeout=5)
        reply.raise_for_status()
        return reply.json()["lease"]["auto_renew"]


def _grpc_interactions(pact: Any) -> None:
    tenant = {"tenant_id": TENANT}
    grpc_interaction(
        pact,
        "Reserve of an available number",
        method="Reserve",
        request=pb.ReserveRequest(number=FREE, tenant_id=TENANT),
        given=[("an available number", {"number": FREE, **tenant})],
        response={
            "number": {"number": FREE, "state": "RESERVED", "tenant_id": TENANT},
            "reservation_id": uuid_like(),
            "expires_at": timestamp_like(),
        },
    )
    grpc_interaction(
        pact,
        "Reserve of a number another tenant holds",
        method="Reserve",
        request=pb.ReserveRequest(number=TAKEN, tenant_id=TENANT),
        given=[
            ("an active tenant", tenant),
            ("a number reserved by the tenant", {"number": TAKEN, "tenant_id": OTHER_TENANT}),
        ],
        refusal=(grpc.StatusCode.FAILED_PRECONDITION, "INVALID_TRANSITION"),
    )
    grpc_interaction(
        pact,
        "Reserve with a stale expected_version",
        method="Reserve",
        request=pb.ReserveRequest(number=STALE, tenant_id=TENANT, expected_version=999),
        given=[("an available number", {"number": STALE, **tenant})],
        refusal=(grpc.StatusCode.ABORTED, "CONFLICT"),
    )
    grpc_interaction(
        pact,
        "ExtendReservation of a number the tenant reserved",
        method="ExtendReservation",
        request=pb.ExtendReservationRequest(number=EXTENDED, tenant_id=TENANT, ttl_seconds=3600),
        given=[("a number reserved by the tenant", {"number": EXTENDED, **tenant})],
        response={
            "number": {
                "number": EXTENDED,
                "state": "RESERVED",
                "tenant_id": TENANT,
                "reserved_until": timestamp_like(),
            },
            "reservation_id": uuid_like(),
            "expires_at": timestamp_like(),
        },
    )
    grpc_interaction(
        pact,
        "ExtendReservation past the 24 h cap",
        method="ExtendReservation",
        request=pb.ExtendReservationRequest(number=OVER_CAP, tenant_id=TENANT, until=FAR_FUTURE),
        given=[("a number reserved by the tenant", {"number": OVER_CAP, **tenant})],
        refusal=(grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR"),
    )
    grpc_interaction(
        pact,
        "Assign of a number the tenant reserved",
        method="Assign",
        request=pb.AssignRequest(number=RESERVED, tenant_id=TENANT),
        given=[("a number reserved by the tenant", {"number": RESERVED, **tenant})],
        response={
            "number": {"number": RESERVED, "state": "ASSIGNED", "tenant_id": TENANT},
            "lease": {
                "lease_id": uuid_like(),
                "tenant_id": TENANT,
                "expires_at": timestamp_like(),
                "auto_renew": match.bool(True),
            },
        },
    )
    grpc_interaction(
        pact,
        "Assign of a number another tenant reserved",
        method="Assign",
        request=pb.AssignRequest(number=FOREIGN_RESERVED, tenant_id=TENANT),
        given=[
            ("an active tenant", tenant),
            ("a number reserved by the tenant", {"number": FOREIGN_RESERVED, "tenant_id": OTHER_TENANT}),
        ],
        refusal=(grpc.StatusCode.PERMISSION_DENIED, "WRONG_TENANT"),
    )
    grpc_interaction(
        pact,
        "Release of an assigned number",
        method="Release",
        request=pb.ReleaseRequest(number=ASSIGNED, tenant_id=TENANT),
        given=[("a number assigned to the tenant", {"number": ASSIGNED, **tenant})],
        response={"number": {"number": ASSIGNED, "state": "QUARANTINED"}},
    )
    grpc_interaction(
        pact,
        "Release of an unknown number",
        method="Release",
        request=pb.ReleaseRequest(number=UNKNOWN, tenant_id=TENANT),
        given=[("an unknown number", {"number": UNKNOWN})],
        refusal=(grpc.StatusCode.NOT_FOUND, "NUMBER_NOT_FOUND"),
    )


def _rest_interactions(pact: Any) -> None:
    tenant = {"tenant_id": TENANT}
    auth = {"Authorization": bearer()}
    (
        pact.upon_receiving("GET available numbers by prefix")
        .given("an available number", {"number": SEARCHABLE, **tenant})
        .with_request("GET", f"{T}/numbers/available/")
        .with_query_parameter("prefix", "9379004020")
        .with_headers(auth)
        .will_respond_with(200)
        .with_body(
            {
                "results": match.each_like(
                    {"number": SEARCHABLE, "kind": "MSISDN", "state": "AVAILABLE", "vanity": False}
                )
            },
            "application/json",
        )
    )
    (
        pact.upon_receiving("POST a reservation of 1 number by criteria")
        .given("an available number", {"number": BY_CRITERIA, **tenant})
        .with_request("POST", f"{T}/reservations/")
        .with_headers(auth)
        .with_body({"count": 1, "kind": "MSISDN", "prefix": "9379004010"}, "application/json")
        .will_respond_with(201)
        .with_body(
            {
                "count": 1,
                "results": [
                    {
                        "number": {"number": BY_CRITERIA, "state": "RESERVED"},
                        "reservation": {"reservation_id": uuid_like(), "expires_at": timestamp_like()},
                    }
                ],
            },
            "application/json",
        )
    )
    (
        pact.upon_receiving("GET my leases")
        .given("a number assigned to the tenant", {"number": LEASED, **tenant})
        .with_request("GET", f"{T}/leases/")
        .with_headers(auth)
        .will_respond_with(200)
        .with_body(
            {
                "results": match.each_like(
                    {
                        "id": uuid_like(),
                        "number": LEASED,
                        "status": "ACTIVE",
                        "expires_at": timestamp_like(),
                        "auto_renew": match.bool(True),
                    }
                )
            },
            "application/json",
        )
    )
    (
        pact.upon_receiving("POST auto-renew off for my lease")
        .given("a number assigned to the tenant", {"number": LEASED, **tenant})
        .with_request(
            "POST",
            match.type(
                f"{T}/leases/{LEASE_ID}/auto-renew/",
                generator=generate.provider_state(f"{T}/leases/${{lease_id}}/auto-renew/"),
            ),
        )
        .with_headers(auth)
        .with_body({"auto_renew": False}, "application/json")
        .will_respond_with(200)
        .with_body(
            {"number": LEASED, "lease": {"lease_id": uuid_like(LEASE_ID), "auto_renew": False}}, "application/json"
        )
    )


def test_customer_portal_bff_contract() -> None:
    grpc_pact, rest_pact = new_pact(CONSUMER), new_pact(CONSUMER)
    _grpc_interactions(grpc_pact)
    stub = PactReplay(grpc_pact)
    portal = PortalNumbers(stub)
    reserved, _ = portal.reserve(FREE)
    assert reserved.number.state == pb.RESERVED and reserved.reservation_id
    assert portal.reserve(TAKEN) == (None, "FAILED_PRECONDITION/INVALID_TRANSITION")
    assert portal.reserve(STALE, expected_version=999) == (None, "ABORTED/CONFLICT")
    extended, _ = portal.extend(EXTENDED, ttl_seconds=3600)
    assert extended.number.state == pb.RESERVED and extended.number.reserved_until.seconds > 0
    assert portal.extend(OVER_CAP, until=FAR_FUTURE) == (None, "INVALID_ARGUMENT/VALIDATION_ERROR")
    assigned, _ = portal.assign(RESERVED)
    assert assigned.lease.tenant_id == TENANT and assigned.lease.lease_id
    assert portal.assign(FOREIGN_RESERVED) == (None, "PERMISSION_DENIED/WRONG_TENANT")
    released, _ = portal.release(ASSIGNED)
    assert released.number.state == pb.QUARANTINED
    assert portal.release(UNKNOWN) == (None, "NOT_FOUND/NUMBER_NOT_FOUND")
    stub.assert_every_interaction_was_used()

    _rest_interactions(rest_pact)
    with rest_pact.serve() as server:
        api = TenantApi(str(server.url).rstrip("/"), EXAMPLE_JWT)
        assert api.search("9379004020") == [SEARCHABLE]
        assert len(api.reserve_matching(1, "9379004010")) == 1
        (lease,) = api.leases()
        assert lease["number"] == LEASED and lease["auto_renew"] is True
        assert api.auto_renew_off(LEASE_ID) is False
    write(rest_pact, grpc_pact)
