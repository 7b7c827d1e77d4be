"""Admin surface: number actions, detail with history, leases, quarantine policies, contracts,
audit, and the error shape."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from contracts.models import Contract
from core.models import OutboxEvent
from numbering.lifecycle import State
from numbering.models import Lease, Number, QuarantinePolicy
from tests.api.conftest import Api, make_token
from tests.factories import ContractFactory, NumberFactory, ShortCodeFactory
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db

A = "/api/admin/v1"


@pytest.fixture
def ops_token() -> str:
    return make_token("commerce.ops", sub="ops.olga")


def test_ops_walks_a_number_through_every_admin_action(api: Api, alice: Any, ops_token: str) -> None:
    n = NumberFactory().number
    steps = [
        ("reserve", {"tenant_id": str(alice.id), "ttl_seconds": 600}, "RESERVED"),
        ("assign", {"tenant_id": str(alice.id), "lease_days": 10, "auto_renew": False}, "ASSIGNED"),
        ("recall", {"reason": "FRAUD"}, "QUARANTINED"),
        ("retire", {"reason": "contract ended"}, "RETIRED"),
        ("reinstate", {"reason": "back"}, "QUARANTINED"),
    ]
    for action, body, state in steps:
        reply = api.post(f"{A}/numbers/{n}/{action}/", ops_token, body)
        assert reply.status == 200, (action, reply.json)
        assert reply.json["number"]["state"] == state
    detail = api.get(f"{A}/numbers/{n}/", ops_token).json
    assert [e["action"] for e in detail["audit_events"]] == ["reinstate", "retire", "recall", "assign", "reserve"]
    assert detail["leases"][0]["status"] == "RECALLED" and detail["lease"] is None
    assert detail["burned_at"] is not None
    assert OutboxEvent.objects.filter(aggregate_id=n).count() == 5


def test_release_of_an_assigned_number_quarantines_it(api: Api, alice: Any, ops_token: str) -> None:
    n = number_in(State.ASSIGNED, alice)
    reply = api.post(f"{A}/numbers/{n.number}/release/", ops_token, {"reason": "ASSIGNED_IN_ERROR"})
    assert reply.status == 200
    assert reply.json["number"]["state"] == "QUARANTINED"


def test_invalid_transition_is_422_problem(api: Api, ops_token: str) -> None:
    n = NumberFactory()
    reply = api.post(f"{A}/numbers/{n.number}/reinstate/", ops_token, {})
    assert reply.status == 422
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.json["code"] == "INVALID_TRANSITION"
    assert reply.json["status"] == 422 and reply.json["request_id"]


def test_expected_version_mismatch_is_409_conflict(api: Api, alice: Any, ops_token: str) -> None:
    n = NumberFactory()
    reply = api.post(f"{A}/numbers/{n.number}/reserve/", ops_token, {"tenant_id": str(alice.id), "expected_version": 7})
    assert reply.status == 409 and reply.json["code"] == "CONFLICT"
    assert Number.objects.get(id=n.id).state == "AVAILABLE"


def test_unknown_number_is_404_and_malformed_number_names_the_rule(api: Api, ops_token: str) -> None:
    assert api.get(f"{A}/numbers/+93799999999/", ops_token).json["code"] == "NUMBER_NOT_FOUND"
    bad = api.get(f"{A}/numbers/hello/", ops_token)
    assert bad.status == 400 and bad.json["field"] == "number" and "short code" in bad.json["detail"]


def test_number_search_filters(api: Api, alice: Any, ops_token: str) -> None:
    vanity = ShortCodeFactory(number="4444", vanity=True, vanity_tier="GOLD")
    ShortCodeFactory(number="4567")
    held = number_in(State.ASSIGNED, alice)

    def numbers(**q: Any) -> list[str]:
        reply = api.get(f"{A}/numbers/", ops_token, q)
        assert reply.status == 200, reply.json
        return [n["number"] for n in reply.json["results"]]

    assert numbers(vanity_tier="GOLD") == [vanity.number]
    assert numbers(kind="SHORT_CODE", pattern="4??4") == [vanity.number]
    assert numbers(tenant=str(alice.id)) == [held.number]
    assert numbers(state="ASSIGNED") == [held.number]
    assert numbers(issuer="atra", prefix="45") == ["4567"]
    assert numbers(pool="GENERAL_MSISDN", number=held.number) == [held.number]
    assert api.get(f"{A}/numbers/", ops_token, {"state": "FLYING"}).status == 400


def test_cursor_pagination_is_stable_and_complete(api: Api, ops_token: str) -> None:
    made = sorted(NumberFactory().number for _ in range(7))
    seen, url, params = [], f"{A}/numbers/", {"page_size": 3}
    while url:
        reply = api.get(url, ops_token, params)
        seen += [n["number"] for n in reply.json["results"]]
        url, params = reply.json["next"], None
    assert seen == made
    assert api.get(f"{A}/numbers/", ops_token, {"page_size": 0}).status == 400
    assert api.get(f"{A}/numbers/", ops_token, {"cursor": "garbage"}).status == 400  # issue 13 item 9


def test_lease_auto_renew_toggle_is_audited(api: Api, alice: Any, ops_token: str) -> None:
    n = number_in(State.ASSIGNED, alice)
    lease = Lease.objects.get(number=n, status="ACTIVE")
    reply = api.post(f"{A}/leases/{lease.id}/auto-renew/", ops_token, {"auto_renew": False})
    assert reply.status == 200, reply.json
    assert reply.json["lease"]["auto_renew"] is False
    assert Lease.objects.get(id=lease.id).auto_renew is False
    event = AuditEvent.objects.filter(action="lease_auto_renew").get()
    assert event.before["lease"]["auto_renew"] is True and event.after["lease"]["auto_renew"] is False
    assert api.get(f"{A}/leases/", ops_token, {"auto_renew": "false"}).json["results"][0]["id"] == str(lease.id)
    tenant = api.post(
        f"/api/tenant/v1/leases/{lease.id}/auto-renew/", make_token("tenant.admin", alice), {"auto_renew": True}
    )
    assert tenant.status == 200 and tenant.json["lease"]["auto_renew"] is True


def test_lease_renew_extends_by_one_term(api: Api, alice: Any, ops_token: str) -> None:
    n = number_in(State.ASSIGNED, alice)
    lease = Lease.objects.get(number=n, status="ACTIVE")
    reply = api.post(f"{A}/leases/{lease.id}/renew/", ops_token)
    assert reply.status == 200
    assert Lease.objects.get(id=lease.id).expires_at - lease.expires_at == __import__("datetime").timedelta(
        days=lease.term_days
    )
    assert api.post(f"{A}/leases/not-a-uuid/renew/", ops_token).status == 400


def test_quarantine_policy_change_needs_approval_and_is_audited(api: Api) -> None:
    admin = make_token("numbering.admin", sub="admin.amir")
    missing = api.call("PATCH", f"{A}/quarantine-policies/MSISDN/", admin, {"days": 60})
    assert missing.status == 400
    assert {e["field"] for e in missing.json["errors"]} == {"approved_by", "approved_at"}
    ok = api.call(
        "PATCH",
        f"{A}/quarantine-policies/MSISDN/",
        admin,
        {"days": 60, "approved_by": "legal.lina", "approved_at": "2026-11-01T10:00:00Z"},
    )
    assert ok.status == 200, ok.json
    assert QuarantinePolicy.objects.get(case="MSISDN").days == 60
    event = AuditEvent.objects.get(action="quarantine_policy.update")
    assert event.before["days"] == 90 and event.after["days"] == 60 and event.after["approved_by"] == "legal.lina"
    assert event.actor == "user:admin.amir"
    assert api.get(f"{A}/quarantine-policies/NOPE/", admin).status == 404
    future = api.call(
        "PATCH", f"{A}/quarantine-policies/MSISDN/", admin, {"approved_by": "x", "approved_at": "2999-01-01T00:00:00Z"}
    )
    assert future.status == 400 and future.json["field"] == "approved_at"


def test_contract_suspend_then_terminate_is_audited_and_checked(api: Api) -> None:
    contract = ContractFactory()
    admin = make_token("numbering.admin")
    assert api.post(f"{A}/contracts/{contract.id}/suspend/", admin, {"reason": "late"}).json["contract"]["status"] == (
        "SUSPENDED"
    )
    again = api.post(f"{A}/contracts/{contract.id}/suspend/", admin, {})
    assert again.status == 422 and again.json["code"] == "INVALID_TRANSITION"
    done = api.post(f"{A}/contracts/{contract.id}/terminate/", admin, {})
    assert done.status == 200 and done.json["contract"]["ends_on"]
    assert Contract.objects.get(id=contract.id).status == "TERMINATED"
    assert list(AuditEvent.objects.filter(object_type="contract").order_by("id").values_list("action", flat=True)) == [
        "contract_suspend",
        "contract_terminate",
    ]
    assert api.post(f"{A}/contracts/999999/suspend/", admin, {}).status == 404


def test_audit_events_and_verify(api: Api, alice: Any) -> None:
    n = number_in(State.ASSIGNED, alice)
    auditor = make_token("auditor")
    events = api.get(f"{A}/audit/events/", auditor, {"number": "0" + n.number[3:]})
    assert [e["action"] for e in events.json["results"]] == ["assign", "reserve"]
    verify = api.post(f"{A}/audit/verify/", auditor)
    assert verify.status == 200 and verify.json["ok"] is True and verify.json["verified"] == 2


def test_read_only_lists(api: Api, alice: Any) -> None:
    ContractFactory()
    admin = make_token("numbering.admin")
    for path in (
        "issuers/",
        "contracts/",
        "blocks/",
        "inventory-pools/",
        "tenant-pools/",
        "tenants/",
        "quarantine-policies/",
    ):
        reply = api.get(f"{A}/{path}", admin)
        assert reply.status == 200, path
    tenants = api.get(f"{A}/tenants/", admin, {"status": "ACTIVE"}).json["results"]
    assert [t["name"] for t in tenants] == ["Alice"]


def test_wrong_method_and_bad_json_are_problems(api: Api) -> None:
    admin = make_token("numbering.admin")
    assert api.call("DELETE", f"{A}/numbers/", admin).json["code"] == "METHOD_NOT_ALLOWED"
    n = NumberFactory()
    reply = api.client.post(
        f"{A}/numbers/{n.number}/retire/",
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {admin}",
    )
    assert reply.status_code == 400 and reply.json()["code"] == "MALFORMED_REQUEST"


def test_terminate_with_an_end_date_and_a_tenant_refused_by_the_suspended_contract(api: Api, alice: Any) -> None:
    from datetime import timedelta

    from core import clock
    from tests.contracts.test_contract_wind_down import contract_with_numbers

    admin = make_token("numbering.admin")
    suspended, (number,) = contract_with_numbers(NumberFactory().pool)
    api.post(f"{A}/contracts/{suspended.id}/suspend/", admin, {"reason": "dispute"})
    tenant = make_token("tenant.admin", alice, sub="alice-admin")
    refused = api.post("/api/tenant/v1/reservations/", tenant, {"number": number.number})
    assert refused.status == 409 and refused.json["code"] == "CONTRACT_SUSPENDED", refused.json
    assert Number.objects.get(id=number.id).state == "AVAILABLE"

    ends_on = (clock.today() + timedelta(days=40)).isoformat()
    done = api.post(f"{A}/contracts/{suspended.id}/terminate/", admin, {"ends_on": ends_on, "reason": "MOU over"})
    assert done.status == 200 and done.json["contract"]["ends_on"] == ends_on
    assert Number.objects.get(id=number.id).state == "RETIRED"  # available: retired at once
    past = api.post(f"{A}/contracts/{ContractFactory().id}/terminate/", admin, {"ends_on": "2020-01-01"})
    assert past.status == 400 and past.json["field"] == "ends_on"
