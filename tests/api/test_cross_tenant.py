"""Tenant B's identifiers used with tenant A's token → 404 and nothing changes (DESIGN §9)."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from core.models import OutboxEvent
from numbering.lifecycle import State
from numbering.models import Lease, Number, Reservation
from tests.api.conftest import Api, make_token
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db

T = "/api/tenant/v1"


@pytest.fixture
def bobs(bob: Any) -> dict[str, Any]:
    assigned = number_in(State.ASSIGNED, bob)
    reserved = number_in(State.RESERVED, bob)
    return {
        "assigned": assigned.number,
        "reserved": reserved.number,
        "lease": Lease.objects.get(number=assigned, status="ACTIVE").id,
        "reservation": Reservation.objects.get(number=reserved, status="ACTIVE").id,
    }


def _snapshot() -> tuple[Any, ...]:
    return (
        sorted(Number.objects.values_list("number", "state", "version", "tenant_id")),
        sorted(Lease.objects.values_list("id", "status", "auto_renew", "expires_at")),
        sorted(Reservation.objects.values_list("id", "status", "expires_at")),
        AuditEvent.objects.count(),
        OutboxEvent.objects.count(),
    )


def test_every_tenant_endpoint_answers_404_for_another_tenants_identifiers(
    api: Api, alice: Any, bobs: dict[str, Any]
) -> None:
    tok = make_token("tenant.admin", alice)
    calls = [
        ("GET", f"{T}/numbers/{bobs['assigned']}/", None),
        ("GET", f"{T}/numbers/{bobs['reserved']}/", None),
        ("POST", f"{T}/numbers/{bobs['assigned']}/assign/", {}),
        ("POST", f"{T}/numbers/{bobs['reserved']}/assign/", {}),
        ("POST", f"{T}/numbers/{bobs['assigned']}/release/", {}),
        ("POST", f"{T}/numbers/{bobs['reserved']}/release/", {}),
        ("POST", f"{T}/numbers/{bobs['reserved']}/extend-reservation/", {"ttl_seconds": 3600}),
        ("POST", f"{T}/reservations/", {"number": bobs["reserved"]}),
        ("GET", f"{T}/reservations/{bobs['reservation']}/", None),
        ("POST", f"{T}/reservations/{bobs['reservation']}/cancel/", None),
        ("GET", f"{T}/leases/{bobs['lease']}/", None),
        ("POST", f"{T}/leases/{bobs['lease']}/auto-renew/", {"auto_renew": False}),
    ]
    before = _snapshot()
    answers = [(path, api.call(method, path, tok, body).status) for method, path, body in calls]
    assert answers == [(path, 404) for _, path, _ in calls]
    assert _snapshot() == before


def test_lists_never_show_another_tenants_rows(api: Api, alice: Any, charlie: Any, bobs: dict[str, Any]) -> None:
    mine = number_in(State.ASSIGNED, alice)
    tok = make_token("tenant.viewer", alice)
    assert [n["number"] for n in api.get(f"{T}/numbers/", tok).json["results"]] == [mine.number]
    assert {r["number"] for r in api.get(f"{T}/reservations/", tok).json["results"]} <= {mine.number}
    assert [lease["number"] for lease in api.get(f"{T}/leases/", tok).json["results"]] == [mine.number]
    available = {n["number"] for n in api.get(f"{T}/numbers/available/", tok).json["results"]}
    assert not available & {bobs["assigned"], bobs["reserved"], mine.number}
    assert api.get(f"{T}/pool/", tok).json["tenant_id"] == str(alice.id)
    charlie_sees = api.get(f"{T}/numbers/", make_token("tenant.viewer", charlie)).json["results"]
    assert charlie_sees == []


def test_tenant_id_in_body_or_query_is_ignored(api: Api, alice: Any, bob: Any) -> None:
    mine = number_in(State.RESERVED, alice)
    tok = make_token("tenant.admin", alice)
    reply = api.post(f"{T}/numbers/{mine.number}/assign/", tok, {"tenant_id": str(bob.id)})
    assert reply.status == 200
    assert reply.json["number"]["tenant_id"] == str(alice.id)
    listed = api.get(f"{T}/numbers/", tok, {"tenant": str(bob.id)}).json["results"]
    assert [n["tenant_id"] for n in listed] == [str(alice.id)]
