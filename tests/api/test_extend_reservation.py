"""Issue 16 part 5: a tenant extends its live reservation over REST (ADR 1640).

POST /api/tenant/v1/numbers/{number}/extend-reservation/ → number_extend_reservation, the
same service the admin button calls. Capped at 24 h from the first reserve (refused, naming
the field and the latest deadline), idempotent, and the Redis TTL key follows the deadline.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from audit.models import AuditEvent
from numbering import reservation_ttl
from numbering.lifecycle import State
from numbering.models import Number, Reservation
from tests.api.conftest import Api, make_token
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db

T = "/api/tenant/v1"


def _path(number: str) -> str:
    return f"{T}/numbers/{number}/extend-reservation/"


def _extensions(number: str) -> int:
    return AuditEvent.objects.filter(object_id=number, action="extend_reservation").count()


def test_tenant_extends_its_reservation_and_the_ttl_key_moves(
    api: Api, alice: Any, django_capture_on_commit_callbacks: Any
) -> None:
    n = number_in(State.RESERVED, alice)
    reservation = Reservation.objects.get(number=n, status="ACTIVE")
    tok = make_token("tenant.admin", alice)
    with django_capture_on_commit_callbacks(execute=True):
        reply = api.post(_path(n.number), tok, {"ttl_seconds": 3600})
    assert reply.status == 200, reply.json
    row = Number.objects.get(id=n.id)
    assert row.reserved_until is not None and n.reserved_until is not None
    assert row.reserved_until > n.reserved_until
    assert reply.json["number"]["reserved_until"] == row.reserved_until.isoformat()
    assert reply.json["number"]["state"] == "RESERVED" and reply.json["number"]["version"] == n.version + 1
    assert reply.json["reservation"]["reservation_id"] == str(reservation.id)
    assert Reservation.objects.get(id=reservation.id).expires_at == row.reserved_until
    key = reservation_ttl.ttl_key(n.number, reservation.id)
    # The key's absolute expiry in real Redis is the new deadline (ms), not the old one.
    assert reservation_ttl.client().execute_command("PEXPIRETIME", key) == int(row.reserved_until.timestamp() * 1000)


def test_replay_returns_the_same_body_and_extends_once(api: Api, alice: Any) -> None:
    n = number_in(State.RESERVED, alice)
    tok = make_token("tenant.admin", alice)
    key = {"Idempotency-Key": "extend-1"}
    first = api.post(_path(n.number), tok, {"ttl_seconds": 3600}, headers=key)
    until_after_first = Number.objects.get(id=n.id).reserved_until
    again = api.post(_path(n.number), tok, {"ttl_seconds": 3600}, headers=key)
    assert first.status == again.status == 200, first.json
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    row = Number.objects.get(id=n.id)
    assert (row.version, row.reserved_until) == (n.version + 1, until_after_first)
    assert _extensions(n.number) == 1

    other = api.post(_path(n.number), tok, {"ttl_seconds": 7200}, headers=key)
    assert other.status == 422, other.json
    assert other.json["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert _extensions(n.number) == 1


def test_a_deadline_past_the_cap_is_refused_naming_the_field_and_the_cap(api: Api, alice: Any) -> None:
    n = number_in(State.RESERVED, alice)
    cap = Reservation.objects.get(number=n, status="ACTIVE").created_at + timedelta(hours=24)
    tok = make_token("tenant.admin", alice)
    reply = api.post(_path(n.number), tok, {"until": (cap + timedelta(seconds=1)).isoformat()})
    assert reply.status == 400, reply.json
    assert reply.json["field"] == "until"
    assert cap.isoformat() in reply.json["detail"]
    ok = api.post(_path(n.number), tok, {"until": cap.isoformat()})  # exactly the cap is allowed
    assert ok.status == 200, ok.json
    assert ok.json["number"]["reserved_until"] == cap.isoformat()
    assert _extensions(n.number) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ttl_seconds": 86401}, "ttl_seconds"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"ttl_seconds": 60, "until": "2030-01-01T00:00:00Z"}, "until"),
        ({"until": "tomorrow"}, "until"),
    ],
)
def test_bad_input_is_refused_naming_the_field(api: Api, alice: Any, body: dict[str, Any], field: str) -> None:
    n = number_in(State.RESERVED, alice)
    reply = api.post(_path(n.number), make_token("tenant.admin", alice), body)
    assert reply.status == 400, reply.json
    fields = {e["field"] for e in reply.json.get("errors", [])} | {reply.json.get("field")}
    assert field in fields
    assert Number.objects.get(id=n.id).version == n.version


def test_an_expired_reservation_cannot_be_extended(api: Api, alice: Any) -> None:
    n = number_in(State.RESERVED, alice, due=True)
    reply = api.post(_path(n.number), make_token("tenant.admin", alice), {"ttl_seconds": 600})
    assert reply.status == 409, reply.json
    assert reply.json["code"] == "RESERVATION_EXPIRED"
    assert Number.objects.get(id=n.id).reserved_until == n.reserved_until
    assert _extensions(n.number) == 0


def test_an_assigned_number_has_no_reservation_to_extend(api: Api, alice: Any) -> None:
    n = number_in(State.ASSIGNED, alice)
    reply = api.post(_path(n.number), make_token("tenant.admin", alice), {"ttl_seconds": 600})
    assert reply.status == 422, reply.json
    assert reply.json["code"] == "INVALID_TRANSITION"


def test_a_viewer_may_not_extend(api: Api, alice: Any) -> None:
    n = number_in(State.RESERVED, alice)
    reply = api.post(_path(n.number), make_token("tenant.viewer", alice), {"ttl_seconds": 600})
    assert reply.status == 403
    assert Number.objects.get(id=n.id).version == n.version
