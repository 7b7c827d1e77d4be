"""The provider states themselves, in process: each is put in place through the real
services, and asking for one again brings its number back first (states are idempotent,
so a pact can be verified twice on one database)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import RequestFactory, override_settings
from django.utils import timezone

from config import provider_states
from numbering import lease_cache
from numbering.models import Lease, Number
from tests.factories import NumberFactory
from tests.grpc_server.conftest import as_platform

pytestmark = pytest.mark.usefixtures("committed")
TENANT = str(uuid.uuid4())


@override_settings(PACT_PROVIDER_STATES_ENABLED=True)
def post(state: str, **params: Any) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"state": state, "params": params, "action": "setup"}).encode()
    reply = provider_states.provider_states(RequestFactory().post("/_pact/provider-states", body, "application/json"))
    return reply.status_code, json.loads(reply.content)


def number(value: str) -> Number:
    return as_platform(lambda: Number.objects.select_related("issuer").get(number=value))


def lease(lease_id: str) -> Lease:
    return as_platform(lambda: Lease.objects.get(id=lease_id))


def test_an_assigned_number_asked_for_again_is_recalled_and_assigned_afresh() -> None:
    status, first = post("a number assigned to the tenant", number="+93790090001", tenant_id=TENANT)
    assert status == 200, first
    row = number("+93790090001")
    assert (row.state, str(row.tenant_id), row.issuer.code, row.is_test) == ("ASSIGNED", TENANT, "ROSHAN", True)
    status, again = post("a number assigned to the tenant", number="0790090001", tenant_id=TENANT)
    assert status == 200 and again["lease_id"] != first["lease_id"]
    assert lease(first["lease_id"]).status == "RECALLED" and lease(again["lease_id"]).status == "ACTIVE"
    assert number("+93790090001").state == "ASSIGNED"


def test_reserved_vanity_and_run_out_states() -> None:
    status, reserved = post("a number reserved by the tenant", number="+93700090002", tenant_id=TENANT)
    assert status == 200 and reserved["reservation_id"]
    assert (number("+93700090002").state, number("+93700090002").issuer.code) == ("RESERVED", "AWCC")

    status, _ = post("an available number", number="7788", vanity_tier="GOLD")
    vanity = number("7788")
    assert status == 200
    assert (vanity.kind, vanity.vanity, vanity.vanity_tier, vanity.issuer.code) == ("SHORT_CODE", True, "GOLD", "ATRA")

    status, lapsed = post(
        "a number assigned to the tenant whose lease has run out", number="+93760090003", tenant_id=TENANT
    )
    assert status == 200
    row = number("+93760090003")
    assert row.state == "ASSIGNED" and lease(lapsed["lease_id"]).expires_at < timezone.now()
    # The cache holds the run-out end, under the number's new version ...
    version, entry = lease_cache.read_entry("+93760090003") or (0, {})
    assert version == row.version and datetime.fromisoformat(entry["expires_at"]) < timezone.now()
    # ... so the assignment's entry arriving late (a cache-sync drain that read the row just
    # before the state's commit) is refused instead of putting the old end back.
    late = {**entry, "expires_at": (timezone.now() + timedelta(days=30)).isoformat()}
    assert lease_cache.write_entry("+93760090003", version - 1, late) is False
    assert lease_cache.read_entry("+93760090003") == (version, entry)


def test_an_unknown_number_must_not_exist_and_foreign_numbers_are_never_reused() -> None:
    assert post("an unknown number", number="+93790090004") == (200, {"number": "+93790090004"})
    NumberFactory(number="+93790090005")
    status, body = post("an unknown number", number="+93790090005")
    assert status == 409 and "exists" in body["detail"]
    status, body = post("an available number", number="+93790090005")
    assert status == 409 and "not a test number" in body["detail"]
