"""API test helpers: tokens signed by the dev key (and deliberately broken ones), a JSON client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.test import Client

from core.api.auth import issue_token
from core.api.devkeys import ensure_dev_keys


def _dev() -> tuple[bytes, str]:
    keys = ensure_dev_keys(settings.JWT_DEV_DIR)
    return keys.private_key_path.read_bytes(), keys.kid


def make_token(roles: list[str] | str, tenant: Any = None, *, sub: str | None = None, ttl: int = 600) -> str:
    pem, kid = _dev()
    role_names = [roles] if isinstance(roles, str) else roles
    tenant_id = str(getattr(tenant, "id", tenant)) if tenant is not None else None
    return issue_token(
        private_key_pem=pem,
        kid=kid,
        subject=sub or f"test-{'-'.join(role_names)}",
        role_names=role_names,
        tenant_id=tenant_id,
        ttl_seconds=ttl,
    )


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": "mallory",
        "roles": ["numbering.admin"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(over)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bad_tokens() -> dict[str, str]:
    """Tokens that must all be refused with 401, each for one reason."""
    pem, kid = _dev()
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = (
        serialization.load_pem_private_key(pem, None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    now = int(time.time())
    none_token = ".".join(
        [_b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode()), _b64(json.dumps(_claims()).encode()), ""]
    )
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    hs_body = _b64(json.dumps(_claims()).encode())
    hs_sig = _b64(hmac.new(public_pem, f"{hs_header}.{hs_body}".encode(), hashlib.sha256).digest())
    return {
        "expired": jwt.encode(
            _claims(exp=now - 3600, iat=now - 7200, nbf=now - 7200), pem, "RS256", headers={"kid": kid}
        ),
        "not_yet_valid": jwt.encode(_claims(nbf=now + 3600), pem, "RS256", headers={"kid": kid}),
        "bad_signature": jwt.encode(_claims(), other_pem, "RS256", headers={"kid": kid}),
        "unknown_kid": jwt.encode(_claims(), other_pem, "RS256", headers={"kid": "not-a-trusted-kid"}),
        "wrong_audience": jwt.encode(_claims(aud="someone-else"), pem, "RS256", headers={"kid": kid}),
        "wrong_issuer": jwt.encode(_claims(iss="https://evil.example"), pem, "RS256", headers={"kid": kid}),
        "no_sub": jwt.encode({k: v for k, v in _claims().items() if k != "sub"}, pem, "RS256", headers={"kid": kid}),
        "no_exp": jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, pem, "RS256", headers={"kid": kid}),
        "alg_none": none_token,
        "hs256_with_public_key": f"{hs_header}.{hs_body}.{hs_sig}",
        "garbage": "not.a.jwt",
        "bad_tenant_id": jwt.encode(
            _claims(roles=["tenant.admin"], tenant_id="nope"), pem, "RS256", headers={"kid": kid}
        ),
    }


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Api:
    def __init__(self) -> None:
        self.client = Client()

    def call(
        self, method: str, path: str, token: str | None = None, data: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        if token:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if method == "GET":
            response = self.client.get(path, data or {}, **extra)
        else:
            body = json.dumps(data) if data is not None else ""
            response = self.client.generic(method, path, body, content_type="application/json", **extra)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return Reply(response.status_code, body, dict(response.headers))

    def get(self, path: str, token: str | None = None, data: Any = None, **kw: Any) -> Reply:
        return self.call("GET", path, token, data, **kw)

    def post(self, path: str, token: str | None = None, data: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, token, data, **kw)


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
def token() -> Callable[..., str]:
    return make_token


def new_uuid() -> str:
    return str(uuid.uuid4())
