"""Issuers' public keys and detached-signature checks (DESIGN §7). Pure crypto, no I/O.

A key is identified by its fingerprint: SHA-256 of the DER SubjectPublicKeyInfo, hex.
Signatures are RSA over SHA-256 of the exact file bytes, RSA-PSS (any salt length) or
PKCS#1 v1.5; we verify against the digest (Prehashed) so the file can be streamed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from core.errors import ValidationError

MIN_RSA_BITS = 2048
MAX_SIGNATURE_BYTES = 2048  # RSA-16384 signatures are 2048 bytes; anything longer is not one


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise ValidationError(
            "public_key_pem: not a PEM public key (expected '-----BEGIN PUBLIC KEY-----' SubjectPublicKeyInfo)",
            field="public_key_pem",
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValidationError(
            "public_key_pem: only RSA keys are accepted (RSA-PSS / PKCS#1 v1.5)", field="public_key_pem"
        )
    if key.key_size < MIN_RSA_BITS:
        raise ValidationError(
            f"public_key_pem: RSA key of {key.key_size} bits is too weak (minimum {MIN_RSA_BITS})",
            field="public_key_pem",
        )
    return key


def fingerprint(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def canonical_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _paddings() -> Iterable[tuple[str, padding.AsymmetricPadding]]:
    yield "RSA-PSS", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    yield "RSASSA-PKCS1-v1_5", padding.PKCS1v15()


def verify_digest(key: rsa.RSAPublicKey, signature: bytes, digest: bytes) -> str | None:
    """The scheme the signature verifies under, or None."""
    for scheme, pad in _paddings():
        try:
            key.verify(signature, digest, pad, utils.Prehashed(hashes.SHA256()))
        except InvalidSignature:
            continue
        return scheme
    return None


# --- development / test helpers: sign like an MNO does -------------------------------------


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return canonical_pem(key.public_key())


def sign(key: rsa.RSAPrivateKey, data: bytes, *, scheme: str = "RSA-PSS") -> bytes:
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
        if scheme == "RSA-PSS"
        else padding.PKCS1v15()
    )
    return key.sign(data, pad, hashes.SHA256())
