"""Issue 13 item 9 over REST: bad input is a 4xx problem, never a 500, and errors do not
echo what the server expects (issuer, audience, roles)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.test import override_settings

from numbering.lifecycle import State
from tests.api.conftest import Api, _claims, _dev, make_token
from tests.factories import NumberFactory
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db

A = "/api/admin/v1"
T = "/api/tenant/v1"


def _cursor(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        _cursor("o=0&r=0&p=not-a-uuid"),
        _cursor("o=0&r=0&p=%00"),
        _cursor("o=99999999999999999999&p=x"),
        _cursor("p=2026-13-45T99:99"),
    ],
)
@pytest.mark.parametrize("path", [f"{A}/numbers/", f"{A}/leases/", f"{A}/tenants/", f"{A}/audit/events/"])
def test_tampered_cursor_is_400_naming_cursor(api: Api, path: str, cursor: str) -> None:
    NumberFactory()
    reply = api.get(path, make_token("numbering.admin"), {"cursor": cursor})
    # A position the column can hold is just a position (an empty page); anything else is 400.
    assert reply.status in (200, 400), reply.body
    if reply.status == 400:
        assert reply.json["field"] == "cursor" and reply.json["code"] == "VALIDATION_ERROR"
    if cursor == "garbage" or "leases" in path:
        assert reply.status == 400


def test_tampered_cursor_on_a_tenant_list_is_400(api: Api, alice: Any) -> None:
    for path in (f"{T}/numbers/", f"{T}/leases/", f"{T}/reservations/"):
        for cursor in ("garbage", _cursor("o=0&r=0&p=2026-99-99"), _cursor("p=\x00")):
            reply = api.get(path, make_token("tenant.admin", alice), {"cursor": cursor})
            assert reply.status in (200, 400), (path, reply.body)
        assert api.get(path, make_token("tenant.admin", alice), {"cursor": "garbage"}).status == 400


def test_json_nested_1000_deep_is_400(api: Api, alice: Any) -> None:
    n = number_in(State.RESERVED, alice)
    body = "[" * 1000 + "]" * 1000
    reply = api.client.post(
        f"{T}/numbers/{n.number}/assign/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {make_token('tenant.admin', alice)}",
    )
    assert reply.status_code == 400, reply.content
    assert reply.json()["code"] == "MALFORMED_REQUEST"


def test_body_over_the_limit_is_413(api: Api, alice: Any) -> None:
    n = number_in(State.RESERVED, alice)
    body = json.dumps({"lease_days": 7, "pad": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)})
    reply = api.client.post(
        f"{T}/numbers/{n.number}/assign/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {make_token('tenant.admin', alice)}",
    )
    assert reply.status_code == 413, reply.content
    assert reply.json()["code"] == "REQUEST_TOO_LARGE"


def _signed(**over: Any) -> str:
    pem, kid = _dev()
    return jwt.encode(_claims(**over), pem, "RS256", headers={"kid": kid})


def test_token_lifetime_is_capped_and_exp_must_be_numeric(api: Api) -> None:
    now = int(time.time())
    for claims in (
        {"exp": 10**20},
        {"exp": now + 2 * 86400, "iat": now},  # exp - iat over 24 h
        {"exp": now + 2 * 86400, "iat": None},  # no iat: exp - now over 24 h
        {"exp": str(now + 600)},
        {"exp": now + 600, "iat": "yesterday"},
    ):
        token = _signed(**{k: v for k, v in claims.items() if v is not None})
        if claims.get("iat", 0) is None:
            decoded = jwt.decode(token, options={"verify_signature": False})
            decoded.pop("iat")
            pem, kid = _dev()
            token = jwt.encode(decoded, pem, "RS256", headers={"kid": kid})
        reply = api.get(f"{A}/numbers/", token)
        assert reply.status == 401, (claims, reply.body)
    assert api.get(f"{A}/numbers/", _signed(exp=now + 3600, iat=now)).status == 200
    with override_settings(JWT_MAX_LIFETIME_SECONDS=600):
        assert api.get(f"{A}/numbers/", _signed(exp=now + 3600, iat=now)).status == 401


def test_auth_errors_do_not_echo_the_expected_issuer_audience_or_roles(api: Api) -> None:
    for token in (_signed(iss="https://evil.example"), _signed(aud="someone-else")):
        reply = api.get(f"{A}/numbers/", token)
        assert reply.status == 401
        text = reply.body.decode()
        assert settings.JWT_ISSUER not in text and repr(settings.JWT_AUDIENCE) not in text
    denied = api.get(f"{A}/audit/events/", make_token("tenant.viewer", None))
    assert denied.status in (401, 403)
    for role in ("numbering.admin", "auditor", "compliance.officer"):
        assert role not in denied.body.decode()


@pytest.mark.parametrize(
    ("path", "field", "roles"),
    [
        (f"{T}/numbers/available/", "vanity", "tenant.viewer"),
        (f"{T}/leases/", "auto_renew", "tenant.viewer"),
        (f"{A}/numbers/", "burned", "numbering.admin"),
        (f"{A}/numbers/", "vanity", "numbering.admin"),
        (f"{A}/leases/", "auto_renew", "numbering.admin"),
    ],
)
def test_a_boolean_filter_it_cannot_read_is_400_naming_it(
    api: Api, alice: Any, path: str, field: str, roles: str
) -> None:
    """`vanity=maybe` used to be read as "no filter" (django-filter's BooleanFilter), answering
    a search nobody asked for; every boolean filter now refuses what is not true or false."""
    token = make_token(roles, alice if roles.startswith("tenant") else None)
    for unreadable in ("maybe", "2", "truee", "null"):
        reply = api.get(path, token, {field: unreadable})
        assert reply.status == 400, (field, unreadable, reply.body)
        assert reply.json["field"] == field and reply.json["code"] == "VALIDATION_ERROR", reply.json
        assert "true or false" in reply.json["detail"], reply.json
    for readable in ("true", "False", "1", "0", "yes", "OFF", ""):
        assert api.get(path, token, {field: readable}).status == 200, (field, readable)


def test_a_strict_boolean_filters_both_ways(api: Api, alice: Any) -> None:
    from numbering.models import Number

    burned = NumberFactory()
    Number.objects.filter(id=burned.id).update(burned_at="2026-01-01T00:00:00Z")
    fresh = NumberFactory()
    token = make_token("numbering.admin")
    only_burned = {n["number"] for n in api.get(f"{A}/numbers/", token, {"burned": "yes"}).json["results"]}
    not_burned = {n["number"] for n in api.get(f"{A}/numbers/", token, {"burned": "0"}).json["results"]}
    assert burned.number in only_burned and fresh.number not in only_burned
    assert fresh.number in not_burned and burned.number not in not_burned
