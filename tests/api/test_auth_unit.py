"""JWT verification details: key sources (file, URL), claim checks, the dev-token command."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import CommandError, call_command
from rest_framework import exceptions

from core.api import auth
from core.api.auth import decode_token, principal_from_claims
from core.api.devkeys import ensure_dev_keys, public_jwk
from tests.api.conftest import Api, _claims, make_token


@pytest.fixture
def fresh_keys() -> Iterator[None]:
    auth.KEYS._origin = None
    auth.KEYS._keys = {}
    yield
    auth.KEYS._origin = None
    auth.KEYS._keys = {}


def _key() -> tuple[bytes, dict[str, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem, public_jwk(key)


def test_jwks_file_is_reloaded_when_it_changes(tmp_path: Path, settings: Any, fresh_keys: None) -> None:
    pem, jwk = _key()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [_key()[1]]}))  # some other key only
    settings.JWT_JWKS_FILE = str(path)
    token = jwt.encode(_claims(), pem, "RS256", headers={"kid": jwk["kid"]})
    with pytest.raises(exceptions.AuthenticationFailed, match="kid"):
        decode_token(token)
    path.write_text(json.dumps({"keys": [jwk]}))
    assert decode_token(token)["sub"] == "mallory"
    no_kid = jwt.encode(_claims(sub="single"), pem, "RS256")
    assert decode_token(no_kid)["sub"] == "single"  # one trusted key: kid may be omitted


def test_missing_jwks_file_refuses_with_a_clear_reason(tmp_path: Path, settings: Any, fresh_keys: None) -> None:
    settings.JWT_JWKS_FILE = str(tmp_path / "absent.json")
    with pytest.raises(exceptions.AuthenticationFailed, match="signing keys are unavailable"):
        decode_token(make_token("auditor"))


def test_jwks_url_is_fetched_over_http(settings: Any, fresh_keys: None) -> None:
    pem, jwk = _key()
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings.JWT_JWKS_URL = f"http://127.0.0.1:{server.server_port}/jwks.json"
        token = jwt.encode(_claims(sub="from-url"), pem, "RS256", headers={"kid": jwk["kid"]})
        assert decode_token(token)["sub"] == "from-url"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"sub": ""}, "'sub' is required"),
        ({"sub": "a", "roles": 5}, "'roles' must be a list"),
        ({"sub": "a", "roles": ["tenant.admin"], "tenant_id": "x"}, "not a UUID"),
    ],
)
def test_bad_claims_are_refused(claims: dict[str, Any], message: str) -> None:
    with pytest.raises(exceptions.AuthenticationFailed, match=message):
        principal_from_claims(claims)


def test_roles_may_be_a_space_separated_string() -> None:
    assert principal_from_claims({"sub": "a", "roles": "auditor commerce.ops"}).roles == {"auditor", "commerce.ops"}


@pytest.mark.django_db
def test_issue_dev_token_prints_a_token_the_api_accepts(alice: Any) -> None:
    out = StringIO()
    call_command("issue_dev_token", "--role", "tenant.viewer", "--tenant", str(alice.id), "--ttl", "60", stdout=out)
    token = out.getvalue().strip()
    claims = decode_token(token)
    assert claims["tenant_id"] == str(alice.id) and claims["roles"] == ["tenant.viewer"]
    assert claims["exp"] - claims["iat"] == 60
    assert Api().get("/api/tenant/v1/pool/", token).status == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "tenant.admin"], "--tenant: required"),
        (["--role", "auditor", "--tenant", "6f1c8a52-2d55-4a39-9a53-0e0b9a1f4f10"], "only tenant roles"),
        (["--role", "tenant.admin", "--role", "auditor", "--tenant", "x"], "do not mix"),
        (["--role", "tenant.admin", "--tenant", "nope"], "not a UUID"),
        (["--role", "auditor", "--ttl", "0"], "--ttl"),
    ],
)
def test_issue_dev_token_refuses_bad_arguments(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("issue_dev_token", *args, stdout=StringIO())


def test_issue_dev_token_is_refused_in_production(settings: Any) -> None:
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("issue_dev_token", "--role", "auditor", stdout=StringIO())


def test_issue_dev_token_refuses_when_the_api_trusts_other_keys(settings: Any) -> None:
    settings.JWT_JWKS_URL = "https://idp.example/jwks.json"
    with pytest.raises(CommandError, match="does not trust the dev key"):
        call_command("issue_dev_token", "--role", "auditor", stdout=StringIO())


def test_dev_keys_are_generated_once_and_private(tmp_path: Path) -> None:
    keys = ensure_dev_keys(tmp_path / "jwt")
    first = keys.private_key_path.read_bytes()
    assert oct(keys.private_key_path.stat().st_mode & 0o777) == "0o600"
    assert ensure_dev_keys(tmp_path / "jwt").private_key_path.read_bytes() == first
    assert json.loads(keys.jwks_path.read_text())["keys"][0]["kid"] == keys.kid
