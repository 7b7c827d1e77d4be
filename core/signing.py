"""The signing-key provider behind regulator manifests and audit checkpoints (DESIGN §7).

`sign(data) -> Signed(signature, key_id)` and `public_key(key_id) -> PEM`. The key id names
the exact key (and version) that signed, so a verifier years later finds the right public
key even after rotations.

- `LocalFileKeyProvider` (development): an Ed25519 key generated on first use under
  EXPORT_LOCAL_KEY_DIR (default .dev/keys/export/). Public keys of earlier local keys are
  kept there as `<key_id>.pub.pem`.
- `VaultTransitKeyProvider` (production): Vault Transit sign / read-key through hvac. The
  private key never leaves Vault.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from typing import NamedTuple, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from django.conf import settings


class SigningError(Exception):
    """The key provider could not sign or find a key; the message says what to check."""


class Signed(NamedTuple):
    signature: str  # base64
    key_id: str


class KeyProvider(Protocol):
    def sign(self, data: bytes) -> Signed: ...

    def public_key(self, key_id: str) -> bytes: ...


def _pem(public: ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- local file --------------------------------------------------------------------------


class LocalFileKeyProvider:
    PRIVATE = "private.pem"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._key: ed25519.Ed25519PrivateKey | None = None
        self._key_id = ""

    def _load(self) -> tuple[ed25519.Ed25519PrivateKey, str]:
        if self._key is None:
            path = self.directory / self.PRIVATE
            if not path.exists():
                self._generate(path)
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ed25519.Ed25519PrivateKey):
                raise SigningError(f"{path}: expected an Ed25519 private key")
            raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self._key, self._key_id = key, "local:ed25519:" + hashlib.sha256(raw).hexdigest()[:16]
            public_path = self.directory / f"{self._key_id.replace(':', '_')}.pub.pem"
            if not public_path.exists():
                public_path.write_bytes(_pem(key.public_key()))
        return self._key, self._key_id

    def _generate(self, path: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # O_EXCL: two processes starting at once must not each write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)

    def sign(self, data: bytes) -> Signed:
        key, key_id = self._load()
        return Signed(base64.b64encode(key.sign(data)).decode("ascii"), key_id)

    def public_key(self, key_id: str) -> bytes:
        self._load()
        path = self.directory / f"{key_id.replace(':', '_')}.pub.pem"
        if not re.fullmatch(r"local:ed25519:[0-9a-f]{16}", key_id) or not path.exists():
            raise SigningError(f"key id {key_id!r}: no such local export key in {self.directory}")
        return path.read_bytes()


# --- Vault Transit -------------------------------------------------------------------------

_VAULT_SIGNATURE = re.compile(r"vault:v(?P<version>[1-9][0-9]*):(?P<b64>[A-Za-z0-9+/=]+)")
_VAULT_KEY_ID = re.compile(r"vault:(?P<mount>[^:]+)/(?P<name>[^:]+):v(?P<version>[1-9][0-9]*)")


def parse_vault_signature(value: object) -> tuple[int, str]:
    """'vault:v3:BASE64' → (3, 'BASE64')."""
    match = _VAULT_SIGNATURE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise SigningError(f"Vault Transit returned a signature in an unexpected form: {str(value)[:40]!r}")
    return int(match["version"]), match["b64"]


class VaultTransitKeyProvider:
    """Vault Transit: POST {mount}/sign/{key} and GET {mount}/keys/{key}.

    RSA keys sign with PSS over SHA-256; Ed25519 keys ignore both options."""

    def __init__(self, *, url: str, token: str, key_name: str, mount_point: str = "transit", timeout: int = 10) -> None:
        import hvac

        self.client = hvac.Client(url=url, token=token or None, timeout=timeout)
        self.key_name, self.mount_point = key_name, mount_point

    def _call(self, what: str, fn, **kwargs):  # type: ignore[no-untyped-def]
        import hvac.exceptions as vault
        import requests

        try:
            return fn(mount_point=self.mount_point, **kwargs)
        except (vault.Forbidden, vault.Unauthorized) as exc:
            raise SigningError(f"Vault refused to {what} (check VAULT_TOKEN and its policy): {exc}") from exc
        except vault.InvalidPath as exc:
            raise SigningError(
                f"Vault Transit key {self.mount_point}/{self.key_name} not found (VAULT_TRANSIT_KEY): {exc}"
            ) from exc
        except vault.InvalidRequest as exc:
            raise SigningError(f"Vault rejected the request to {what}: {exc}") from exc
        except (vault.VaultDown, vault.InternalServerError, vault.BadGateway, vault.RateLimitExceeded) as exc:
            raise SigningError(f"Vault is unavailable, could not {what}: {exc}") from exc
        except requests.RequestException as exc:
            raise SigningError(f"Vault at VAULT_ADDR is unreachable, could not {what}: {exc}") from exc
        except vault.VaultError as exc:
            raise SigningError(f"Vault error, could not {what}: {exc}") from exc

    def sign(self, data: bytes) -> Signed:
        response = self._call(
            "sign",
            self.client.secrets.transit.sign_data,
            name=self.key_name,
            hash_input=base64.b64encode(data).decode("ascii"),
            hash_algorithm="sha2-256",
            signature_algorithm="pss",
        )
        try:
            raw = response["data"]["signature"]
        except (KeyError, TypeError):
            raise SigningError("Vault Transit sign response has no data.signature") from None
        version, signature = parse_vault_signature(raw)
        return Signed(signature, f"vault:{self.mount_point}/{self.key_name}:v{version}")

    def public_key(self, key_id: str) -> bytes:
        match = _VAULT_KEY_ID.fullmatch(key_id)
        if match is None:
            raise SigningError(f"key id {key_id!r} is not a Vault Transit key id (vault:<mount>/<key>:v<N>)")
        response = self._call("read the public key", self.client.secrets.transit.read_key, name=match["name"])
        try:
            data = response["data"]
            entry = data["keys"][match["version"]]
            public = entry["public_key"]
        except (KeyError, TypeError):
            raise SigningError(
                f"Vault Transit has no public key for {key_id} (not an asymmetric key, or version trimmed)"
            ) from None
        if public.startswith("-----BEGIN"):
            return public.encode("ascii")
        # Ed25519 public keys come back as base64 of the 32 raw bytes.
        return _pem(ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public)))


# --- selection and verification ------------------------------------------------------------


def get_provider() -> KeyProvider:
    if settings.SIGNING_PROVIDER == "vault":
        return VaultTransitKeyProvider(
            url=settings.VAULT_ADDR,
            token=settings.VAULT_TOKEN,
            key_name=settings.VAULT_TRANSIT_KEY,
            mount_point=settings.VAULT_TRANSIT_MOUNT,
            timeout=settings.VAULT_TIMEOUT_SECONDS,
        )
    return LocalFileKeyProvider(settings.EXPORT_LOCAL_KEY_DIR)


def verify_signature(public_key_pem: bytes, data: bytes, signature_b64: str) -> bool:
    """Ed25519, or RSA-PSS/SHA-256 (any salt length, as Vault's default 'auto' produces)."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public = serialization.load_pem_public_key(public_key_pem)
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        elif isinstance(public, rsa.RSAPublicKey):
            pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO)
            public.verify(signature, data, pss, hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# --- signed JSON documents (manifests, audit checkpoints) -----------------------------------------


def signing_bytes(document: dict[str, object]) -> bytes:
    """What a signature covers: the canonical JSON (sorted keys, no spaces) of the document
    without its `signature` field. `key_id` is inside, so the signer is covered too."""
    import json

    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def sign_document(document: dict[str, object], provider: KeyProvider | None = None) -> dict[str, object]:
    """The document with `key_id` and `signature` set. Providers report which key signed,
    so the first signature learns the key id and the second covers it (a rotation in
    between is caught by comparing the two)."""
    provider = provider or get_provider()
    signed_doc = dict(document, key_id="")
    signed_doc["key_id"] = provider.sign(signing_bytes(signed_doc)).key_id
    for _ in range(3):
        signed = provider.sign(signing_bytes(signed_doc))
        if signed.key_id == signed_doc["key_id"]:
            signed_doc["signature"] = signed.signature
            return signed_doc
        signed_doc["key_id"] = signed.key_id
    raise SigningError("the signing key kept rotating while signing; try again")


def verify_document(document: dict[str, object], provider: KeyProvider | None = None) -> bool:
    key_id, signature = document.get("key_id"), document.get("signature")
    if not isinstance(key_id, str) or not isinstance(signature, str):
        return False
    public = (provider or get_provider()).public_key(key_id)
    return verify_signature(public, signing_bytes(document), signature)
