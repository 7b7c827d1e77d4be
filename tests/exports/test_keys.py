"""Key providers. The Vault provider talks HTTP to a tiny Vault Transit stand-in started
here (no Vault server can run on this machine): it checks hvac's request shape, the
key-version parsing and the error mapping against real HTTP."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from bench.ports import free_port
from core.signing import (
    LocalFileKeyProvider,
    SigningError,
    VaultTransitKeyProvider,
    get_provider,
    parse_vault_signature,
    verify_signature,
)


def test_local_provider_generates_a_key_once_and_its_signatures_verify(tmp_path: Path) -> None:
    provider = LocalFileKeyProvider(tmp_path / "keys")
    signed = provider.sign(b"manifest")
    assert signed.key_id.startswith("local:ed25519:")
    assert (tmp_path / "keys" / "private.pem").stat().st_mode & 0o777 == 0o600
    again = LocalFileKeyProvider(tmp_path / "keys").sign(b"manifest")
    assert again.key_id == signed.key_id
    pem = provider.public_key(signed.key_id)
    assert verify_signature(pem, b"manifest", signed.signature)
    assert not verify_signature(pem, b"manifest!", signed.signature)
    assert not verify_signature(pem, b"manifest", "not base64!")


def test_local_provider_refuses_an_unknown_key_id(tmp_path: Path) -> None:
    provider = LocalFileKeyProvider(tmp_path)
    with pytest.raises(SigningError, match="no such local export key"):
        provider.public_key("local:ed25519:0000000000000000")
    with pytest.raises(SigningError, match="no such local export key"):
        provider.public_key("../../etc/passwd")


def test_local_provider_refuses_a_non_ed25519_key_file(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "private.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    with pytest.raises(SigningError, match="expected an Ed25519"):
        LocalFileKeyProvider(tmp_path).sign(b"x")


def test_get_provider_follows_settings(settings: Any, tmp_path: Path) -> None:
    settings.SIGNING_PROVIDER = "local"
    settings.EXPORT_LOCAL_KEY_DIR = tmp_path
    assert isinstance(get_provider(), LocalFileKeyProvider)
    settings.SIGNING_PROVIDER = "vault"
    settings.VAULT_ADDR = "http://127.0.0.1:1"
    provider = get_provider()
    assert isinstance(provider, VaultTransitKeyProvider)
    assert provider.key_name == settings.VAULT_TRANSIT_KEY


@pytest.mark.parametrize("value", ["vault:v0:AAAA", "v1:AAAA", None, "vault:vx:AAAA", "vault:v2:"])
def test_malformed_vault_signatures_are_refused(value: Any) -> None:
    with pytest.raises(SigningError, match="unexpected form"):
        parse_vault_signature(value)


# --- a Vault Transit stand-in on a real socket ------------------------------------------------


class FakeTransit:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.version = 3
        self.requests: list[tuple[str, str, dict[str, Any], str | None]] = []
        self.fail_with: int | None = None
        if kind == "ed25519":
            self.key: Any = ed25519.Ed25519PrivateKey.generate()
            raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self.public = base64.b64encode(raw).decode()
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.public = (
                self.key.public_key()
                .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                .decode()
            )

    def sign(self, data: bytes) -> bytes:
        if self.kind == "ed25519":
            return self.key.sign(data)
        return self.key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())


@pytest.fixture(params=["ed25519", "rsa"])
def vault(request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeTransit]]:
    transit = FakeTransit(request.param)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            transit.requests.append((method, self.path, body, self.headers.get("X-Vault-Token")))
            if transit.fail_with:
                self._reply(transit.fail_with, {"errors": [f"status {transit.fail_with}"]})
                return
            if method == "POST" and self.path == "/v1/transit/sign/numbering-export":
                data = base64.b64decode(body["input"])
                signature = base64.b64encode(transit.sign(data)).decode()
                self._reply(200, {"data": {"signature": f"vault:v{transit.version}:{signature}", "key_version": 3}})
            elif method == "GET" and self.path == "/v1/transit/keys/numbering-export":
                keys = {str(transit.version): {"public_key": transit.public, "name": transit.kind}}
                self._reply(200, {"data": {"type": transit.kind, "latest_version": transit.version, "keys": keys}})
            else:
                self._reply(404, {"errors": []})

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", transit
    finally:
        server.shutdown()
        server.server_close()


def _provider(url: str, key: str = "numbering-export") -> VaultTransitKeyProvider:
    return VaultTransitKeyProvider(url=url, token="s.test-token", key_name=key, timeout=2)


def test_vault_sign_request_shape_and_key_version(vault: tuple[str, FakeTransit]) -> None:
    url, transit = vault
    signed = _provider(url).sign(b"canonical manifest")
    method, path, body, token = transit.requests[0]
    assert (method, path, token) == ("POST", "/v1/transit/sign/numbering-export", "s.test-token")
    assert base64.b64decode(body["input"]) == b"canonical manifest"
    assert body["hash_algorithm"] == "sha2-256" and body["signature_algorithm"] == "pss"
    assert signed.key_id == "vault:transit/numbering-export:v3"
    pem = _provider(url).public_key(signed.key_id)
    assert verify_signature(pem, b"canonical manifest", signed.signature)
    assert not verify_signature(pem, b"other", signed.signature)


def test_vault_public_key_of_a_trimmed_version_is_a_clear_error(vault: tuple[str, FakeTransit]) -> None:
    url, _ = vault
    with pytest.raises(SigningError, match="no public key for vault:transit/numbering-export:v2"):
        _provider(url).public_key("vault:transit/numbering-export:v2")
    with pytest.raises(SigningError, match="not a Vault Transit key id"):
        _provider(url).public_key("local:ed25519:0000")


@pytest.mark.parametrize(
    ("status", "message"),
    [(403, "refused to sign"), (400, "rejected the request"), (503, "unavailable"), (500, "unavailable")],
)
def test_vault_errors_are_mapped_to_signing_errors(vault: tuple[str, FakeTransit], status: int, message: str) -> None:
    url, transit = vault
    transit.fail_with = status
    with pytest.raises(SigningError, match=message):
        _provider(url).sign(b"x")


def test_vault_unknown_key_is_named(vault: tuple[str, FakeTransit]) -> None:
    url, _ = vault
    with pytest.raises(SigningError, match="transit/nope not found"):
        _provider(url, key="nope").sign(b"x")


def test_unreachable_vault_is_reported() -> None:
    port = free_port()
    with pytest.raises(SigningError, match="unreachable"):
        _provider(f"http://127.0.0.1:{port}").sign(b"x")
