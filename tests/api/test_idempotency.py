"""Idempotency-Key on state-changing POSTs (DESIGN §2.3): replay byte for byte, reuse refused,
scope = token subject."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from numbering.lifecycle import State
from numbering.models import Number
from tests.api.conftest import Api, make_token
from tests.factories import NumberFactory
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db

T = "/api/tenant/v1"
A = "/api/admin/v1"


def test_replay_returns_the_first_response_byte_for_byte(api: Api, alice: Any) -> None:
    numbers = [NumberFactory() for _ in range(3)]
    tok = make_token("tenant.admin", alice)
    key = {"Idempotency-Key": "order-42"}
    first = api.post(f"{T}/reservations/", tok, {"count": 2}, headers=key)
    again = api.post(f"{T}/reservations/", tok, {"count": 2}, headers=key)
    assert first.status == again.status == 201
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert Number.objects.filter(state="RESERVED").count() == 2
    assert AuditEvent.objects.count() == 2
    assert len(numbers) == 3


@pytest.mark.parametrize("path", ["assign", "release"])
def test_number_action_replay_is_byte_identical_and_has_one_effect(api: Api, alice: Any, path: str) -> None:
    n = number_in(State.RESERVED, alice)
    tok = make_token("tenant.admin", alice)
    key = {"Idempotency-Key": f"k-{path}"}
    first = api.post(f"{T}/numbers/{n.number}/{path}/", tok, {}, headers=key)
    again = api.post(f"{T}/numbers/{n.number}/{path}/", tok, {}, headers=key)
    assert first.status == again.status == 200, first.json
    assert first.body == again.body
    assert AuditEvent.objects.filter(object_id=n.number).count() == 2  # reserve + this one


def test_same_key_with_a_different_request_is_refused(api: Api, alice: Any) -> None:
    NumberFactory()
    NumberFactory()
    tok = make_token("tenant.admin", alice)
    key = {"Idempotency-Key": "same"}
    assert api.post(f"{T}/reservations/", tok, {"count": 1}, headers=key).status == 201
    reused = api.post(f"{T}/reservations/", tok, {"count": 2}, headers=key)
    assert reused.status == 422
    assert reused.json["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert Number.objects.filter(state="RESERVED").count() == 1


def test_keys_are_scoped_to_the_token_subject(api: Api, alice: Any) -> None:
    NumberFactory()
    NumberFactory()
    key = {"Idempotency-Key": "shared-key"}
    one = api.post(f"{T}/reservations/", make_token("tenant.admin", alice, sub="u1"), {"count": 1}, headers=key)
    two = api.post(f"{T}/reservations/", make_token("tenant.admin", alice, sub="u2"), {"count": 1}, headers=key)
    assert one.status == two.status == 201
    assert one.body != two.body
    assert Number.objects.filter(state="RESERVED").count() == 2


def test_a_refused_request_is_not_stored_so_a_retry_runs_again(api: Api, alice: Any) -> None:
    tok = make_token("tenant.admin", alice)
    key = {"Idempotency-Key": "retry-me"}
    assert api.post(f"{T}/reservations/", tok, {"count": 1}, headers=key).status == 409
    NumberFactory()
    assert api.post(f"{T}/reservations/", tok, {"count": 1}, headers=key).status == 201


def test_contract_and_lease_actions_replay(api: Api, alice: Any) -> None:
    from tests.factories import ContractFactory

    contract = ContractFactory()
    n = number_in(State.ASSIGNED, alice)
    lease_id = n.leases.get(status="ACTIVE").id
    admin = make_token("numbering.admin")
    key = {"Idempotency-Key": "c-1"}
    first = api.post(f"{A}/contracts/{contract.id}/suspend/", admin, {"reason": "audit"}, headers=key)
    again = api.post(f"{A}/contracts/{contract.id}/suspend/", admin, {"reason": "audit"}, headers=key)
    assert first.status == again.status == 200 and first.body == again.body
    key = {"Idempotency-Key": "l-1"}
    first = api.post(f"{A}/leases/{lease_id}/renew/", admin, None, headers=key)
    again = api.post(f"{A}/leases/{lease_id}/renew/", admin, None, headers=key)
    assert first.status == again.status == 200 and first.body == again.body
    assert first.json["lease"]["renewals"] == 1


def test_bad_idempotency_key_header_is_a_validation_error(api: Api, alice: Any) -> None:
    reply = api.post(
        f"{T}/reservations/", make_token("tenant.admin", alice), {"count": 1}, headers={"Idempotency-Key": "x" * 201}
    )
    assert reply.status == 400
    assert reply.json["errors"][0]["field"] == "Idempotency-Key"
