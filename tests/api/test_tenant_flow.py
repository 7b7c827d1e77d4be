"""The tenant portal flow over HTTP: search → reserve 3 by criteria → assign → release → cancel."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from core.models import OutboxEvent
from numbering.models import Lease, Number, Reservation
from tests.api.conftest import Api, make_token
from tests.factories import NumberFactory

pytestmark = pytest.mark.django_db

T = "/api/tenant/v1"


@pytest.fixture
def lucky(alice: Any) -> list[Number]:
    """Five AVAILABLE numbers with 777 in them, and three without."""
    lucky = [NumberFactory(number=f"+9379{i}777{i}00") for i in range(5)]
    for i in range(3):
        NumberFactory(number=f"+9379{i}12345{i}")
    return lucky


def test_tenant_flow_search_reserve_assign_release_cancel(api: Api, alice: Any, lucky: list[Number]) -> None:
    tok = make_token("tenant.admin", alice, sub="alice-admin")

    found = api.get(f"{T}/numbers/available/", tok, {"pattern": "*777*"})
    assert found.status == 200, found.json
    assert [n["number"] for n in found.json["results"]] == sorted(n.number for n in lucky)
    assert all(n["state"] == "AVAILABLE" for n in found.json["results"])

    reserved = api.post(f"{T}/reservations/", tok, {"count": 3, "pattern": "*777*"})
    assert reserved.status == 201, reserved.json
    assert reserved.json["count"] == 3
    numbers = [r["number"]["number"] for r in reserved.json["results"]]
    assert all(
        r["number"]["state"] == "RESERVED" and r["number"]["tenant_id"] == str(alice.id)
        for r in reserved.json["results"]
    )
    first, second, third = numbers

    assigned = api.post(f"{T}/numbers/{first}/assign/", tok, {"lease_days": 30})
    assert assigned.status == 200, assigned.json
    assert assigned.json["number"]["state"] == "ASSIGNED"
    assert assigned.json["lease"]["term_days"] == 30

    released = api.post(f"{T}/numbers/{first}/release/", tok, {"reason": "no longer needed"})
    assert released.status == 200, released.json
    assert released.json["number"]["state"] == "QUARANTINED"

    reservation_id = Reservation.objects.get(number__number=second, status="ACTIVE").id
    cancelled = api.post(f"{T}/reservations/{reservation_id}/cancel/", tok)
    assert cancelled.status == 200, cancelled.json
    assert cancelled.json["number"]["state"] == "AVAILABLE"

    mine = api.get(f"{T}/numbers/", tok)
    assert [n["number"] for n in mine.json["results"]] == [third]

    states = dict(Number.objects.filter(number__in=numbers).values_list("number", "state"))
    assert states == {first: "QUARANTINED", second: "AVAILABLE", third: "RESERVED"}
    assert Lease.objects.get(number__number=first).status == "RELEASED"
    assert Reservation.objects.get(number__number=second).status == "CANCELLED"

    def actions(n: str) -> list[str]:
        return list(AuditEvent.objects.filter(object_id=n).order_by("id").values_list("action", flat=True))

    def events(n: str) -> list[str]:
        return list(OutboxEvent.objects.filter(aggregate_id=n).order_by("id").values_list("event_type", flat=True))

    assert actions(first) == ["reserve", "assign", "release"]
    assert actions(second) == ["reserve", "release"]
    assert actions(third) == ["reserve"]
    assert events(first) == [
        "numbering.number.reserved.v1",
        "numbering.number.assigned.v1",
        "numbering.number.released.v1",
    ]
    assert events(second) == ["numbering.number.reserved.v1", "numbering.number.released.v1"]
    assert (
        AuditEvent.objects.filter(object_id=first).values_list("actor", flat=True).distinct().get()
        == f"tenant:{alice.id}:alice-admin"
    )

    pool = api.get(f"{T}/pool/", tok)
    assert pool.status == 200
    assert pool.json["usage"]["MSISDN"] == {"reserved": 1, "assigned": 0, "held": 1, "remaining": 9}


def test_reserve_by_criteria_is_all_or_nothing(api: Api, alice: Any, lucky: list[Number]) -> None:
    tok = make_token("tenant.admin", alice)
    refused = api.post(f"{T}/reservations/", tok, {"count": 6, "pattern": "*777*"})
    assert refused.status == 409
    assert refused.json["code"] == "NOT_AVAILABLE"
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert not Number.objects.filter(state="RESERVED").exists()
    assert not AuditEvent.objects.exists()


def test_reserve_one_number_in_national_format(api: Api, alice: Any, lucky: list[Number]) -> None:
    tok = make_token("tenant.admin", alice)
    national = "0" + lucky[0].number[3:]
    reply = api.post(f"{T}/reservations/", tok, {"number": national})
    assert reply.status == 201, reply.json
    assert reply.json["results"][0]["number"]["number"] == lucky[0].number


def test_validation_errors_list_every_bad_field(api: Api, alice: Any) -> None:
    tok = make_token("tenant.admin", alice)
    reply = api.post(f"{T}/reservations/", tok, {"count": 0, "ttl_seconds": -5, "kind": "FAX"})
    assert reply.status == 400
    body = reply.json
    assert body["code"] == "VALIDATION_ERROR"
    assert {e["field"] for e in body["errors"]} == {"count", "ttl_seconds", "kind"}
    assert body["request_id"] == reply.headers["X-Request-ID"]


def test_bad_search_pattern_names_the_field_and_rule(api: Api, alice: Any) -> None:
    tok = make_token("tenant.viewer", alice)
    reply = api.get(f"{T}/numbers/available/", tok, {"pattern": "(a+)+$"})
    assert reply.status == 400
    assert reply.json["field"] == "pattern"
    assert "digits with *" in reply.json["detail"]


def test_search_accepts_prefix_in_any_format(api: Api, alice: Any, lucky: list[Number]) -> None:
    tok = make_token("tenant.viewer", alice)
    for prefix in ("+937907", "937907", "07907", "7907"):
        reply = api.get(f"{T}/numbers/available/", tok, {"prefix": prefix})
        assert [n["number"] for n in reply.json["results"]] == [lucky[0].number], prefix


def test_viewer_may_not_reserve(api: Api, alice: Any, lucky: list[Number]) -> None:
    reply = api.post(f"{T}/reservations/", make_token("tenant.viewer", alice), {"count": 1})
    assert reply.status == 403
    assert reply.json["code"] == "FORBIDDEN"
