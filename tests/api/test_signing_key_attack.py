"""Issue 13 item 2: whoever runs imports could install the trust anchors for them.

The attack: commerce.ops adds a key for ROSHAN over REST with a backdated valid_from and a
1,000-year lifetime, signs its own CSV and imports it "as ROSHAN". Each step is refused now:
ops may not manage keys, the window is checked, and a key verifies imports only after a
second, different user approved it (ADR 1350)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from audit.models import AuditEvent
from contracts import signing
from contracts.models import SigningKey
from contracts.services import signing_key_add, signing_key_approve, signing_key_revoke
from core import clock, errors
from core.actors import Actor
from tests.api.conftest import Api, make_token
from tests.api.test_imports_api import upload
from tests.contracts import conftest as contract_fixtures
from tests.contracts.conftest import HEADER, msisdn_rows, private_key, sign_csv

_import_dir = contract_fixtures._import_dir
pools = contract_fixtures.pools
roshan = contract_fixtures.roshan
inventory_snapshot = contract_fixtures.inventory_snapshot

pytestmark = pytest.mark.django_db

KEYS = "/api/admin/v1/issuers/ROSHAN/signing-keys/"


def _iso(delta: timedelta) -> str:
    return (clock.now() + delta).isoformat()


def test_the_attack_commerce_ops_cannot_install_a_backdated_thousand_year_key(
    roshan: Any, inventory_snapshot: Any
) -> None:
    api, before = Api(), inventory_snapshot()
    attack = {
        "public_key_pem": signing.public_pem(private_key("forged-roshan")),
        "valid_from": _iso(-timedelta(days=365)),
        "valid_to": _iso(timedelta(days=365 * 1000)),
    }
    reply = api.post(KEYS, make_token("commerce.ops"), attack)
    assert reply.status == 403 and reply.json["code"] == "FORBIDDEN"
    # Even if the key were installed (by a key manager), the forged CSV would not import.
    assert upload(sign_csv(HEADER + msisdn_rows(3), key="forged-roshan")).status_code == 422
    assert SigningKey.objects.filter(issuer=roshan).count() == 1
    assert inventory_snapshot() == before


@pytest.mark.parametrize(
    ("window", "field", "message"),
    [
        ({"valid_from": -timedelta(days=1)}, "valid_from", "may not lie in the past"),
        ({"valid_from": -timedelta(minutes=10)}, "valid_from", "may not lie in the past"),
        ({"valid_to": timedelta(days=365 * 1000)}, "valid_to", "at most 730 days"),
        ({"valid_from": timedelta(days=1), "valid_to": timedelta(days=732)}, "valid_to", "at most 730 days"),
    ],
)
def test_key_manager_cannot_backdate_or_exceed_the_lifetime(
    roshan: Any, window: dict[str, timedelta], field: str, message: str
) -> None:
    body = {"public_key_pem": signing.public_pem(private_key("km-window")), **{k: _iso(v) for k, v in window.items()}}
    reply = Api().post(KEYS, make_token("key.manager", sub="kim"), body)
    assert reply.status == 400, reply.body
    assert reply.json["field"] == field and message in reply.json["detail"]
    assert SigningKey.objects.filter(issuer=roshan).count() == 1


def test_clock_skew_is_tolerated_and_an_open_end_becomes_the_lifetime_cap(roshan: Any, settings: Any) -> None:
    settings.SIGNING_KEY_MAX_LIFETIME_DAYS = 30
    body = {"public_key_pem": signing.public_pem(private_key("km-skew")), "valid_from": _iso(-timedelta(seconds=60))}
    reply = Api().post(KEYS, make_token("key.manager", sub="kim"), body)
    assert reply.status == 201, reply.body
    key = SigningKey.objects.get(fingerprint=reply.json["fingerprint"])
    assert key.valid_to - key.valid_from == timedelta(days=30)


def test_four_eyes_a_key_imports_only_after_a_different_user_approves_it(roshan: Any, inventory_snapshot: Any) -> None:
    api, kim, kai = Api(), make_token("key.manager", sub="kim"), make_token("key.manager", sub="kai")
    added = api.post(KEYS, kim, {"public_key_pem": signing.public_pem(private_key("roshan-4eyes"))})
    assert added.status == 201 and added.json["created_by"] == "user:kim" and not added.json["usable"]
    before = inventory_snapshot()
    refused = upload(sign_csv(HEADER + msisdn_rows(3), key="roshan-4eyes"))
    assert refused.status_code == 422 and "awaiting approval" in refused.json()["detail"]
    assert inventory_snapshot() == before

    approve = f"{KEYS}{added.json['fingerprint']}/approve/"
    own = api.post(approve, kim, None)
    assert own.status == 400 and own.json["field"] == "approved_by" and "second, different" in own.json["detail"]
    assert api.post(approve, make_token("commerce.ops"), None).status == 403
    ok = api.post(approve, kai, None)
    assert ok.status == 200 and ok.json["usable"] and ok.json["approved_by"] == "user:kai"
    assert upload(sign_csv(HEADER + msisdn_rows(3), key="roshan-4eyes")).status_code == 202
    fp = added.json["fingerprint"]
    actions = list(AuditEvent.objects.filter(object_id=f"key:{fp}").order_by("id").values_list("action", "actor"))
    assert actions == [("signing_key.add", "user:kim"), ("signing_key.approve", "user:kai")]


def test_add_approve_revoke_are_audited_and_tenants_and_revoked_keys_are_refused(roshan: Any) -> None:
    alice, bob = Actor.user("alice"), Actor.user("bob")
    start = clock.now() + timedelta(minutes=1)
    key = signing_key_add(
        issuer_code="ROSHAN", public_key_pem=signing.public_pem(private_key("svc")), actor=alice, valid_from=start
    )
    tenant = Actor.tenant("t", uuid.uuid4())
    with pytest.raises(errors.ValidationError):
        signing_key_approve(fingerprint=key.fingerprint, actor=tenant)
    signing_key_revoke(fingerprint=key.fingerprint, actor=bob, reason="test")
    with pytest.raises(errors.InvalidTransition):
        signing_key_approve(fingerprint=key.fingerprint, actor=bob)
    with pytest.raises(errors.NotFound):
        signing_key_approve(fingerprint="0" * 64, actor=bob)
    events = AuditEvent.objects.filter(object_id=f"key:{key.fingerprint}").values_list("action", flat=True)
    assert sorted(events) == ["signing_key.add", "signing_key.revoke"]

    other = signing_key_add(
        issuer_code="ROSHAN", public_key_pem=signing.public_pem(private_key("svc2")), actor=alice, valid_from=start
    )
    approved = signing_key_approve(fingerprint=other.fingerprint, actor=bob)
    assert signing_key_approve(fingerprint=other.fingerprint, actor=bob).approved_at == approved.approved_at
    assert AuditEvent.objects.filter(action="signing_key.approve", object_id=f"key:{other.fingerprint}").count() == 1
