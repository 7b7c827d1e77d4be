"""The development JWT signing key (never used in production).

Generated on first use under .dev/jwt/ (git-ignored): an RSA private key for
`issue_dev_token` and the matching JWKS that dev/test settings trust.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class DevKeys:
    private_key_path: Path
    jwks_path: Path

    @property
    def kid(self) -> str:
        return json.loads(self.jwks_path.read_text())["keys"][0]["kid"]


def _b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = private_key.public_key().public_numbers()
    jwk = {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}
    # RFC 7638 thumbprint as the key id.
    thumb = hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()).digest()
    return {**jwk, "kid": base64.urlsafe_b64encode(thumb).rstrip(b"=").decode(), "use": "sig", "alg": "RS256"}


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def ensure_dev_keys(directory: Path) -> DevKeys:
    directory.mkdir(parents=True, exist_ok=True)
    keys = DevKeys(directory / "dev_private_key.pem", directory / "jwks.json")
    if keys.private_key_path.exists() and keys.jwks_path.exists():
        return keys
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomically(keys.private_key_path, pem, 0o600)
    jwks = {"keys": [public_jwk(private_key)]}
    _write_atomically(keys.jwks_path, json.dumps(jwks, indent=2).encode(), 0o644)
    return keys
