"""Step 2a of an import: the signature over the exact stored bytes must verify with a key
of the issuer that is valid now, before a single byte is parsed. A refusal says precisely
why (a retired key reads differently from a forgery)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from contracts import signing
from contracts.imports.outcome import Refusal
from contracts.imports.storage import chunks, csv_path, signature_path
from contracts.models import InventoryImport, SigningKey
from contracts.selectors import signing_key_problem, signing_keys_valid
from core import clock


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in chunks(fh):
            digest.update(chunk)
    return digest.digest()


def verify_signature(imp: InventoryImport) -> SigningKey:
    """The valid key of the issuer the signature verifies with; Refusal otherwise."""
    signature = signature_path(imp).read_bytes()
    digest = _file_digest(csv_path(imp))
    if digest.hex() != imp.file_sha256:
        raise Refusal("csv: the stored file changed after upload (SHA-256 mismatch); upload it again")
    issuer = imp.issuer
    if not signature:
        raise Refusal("signature: the detached signature is empty")
    if len(signature) > signing.MAX_SIGNATURE_BYTES:
        raise Refusal(f"signature: {len(signature)} bytes is not an RSA signature (max {signing.MAX_SIGNATURE_BYTES})")
    now = clock.now()
    all_keys = list(SigningKey.objects.filter(issuer=issuer))
    if not all_keys:
        raise Refusal(f"signature: issuer {issuer.code} has no signing key installed (add_signing_key)")
    valid = list(signing_keys_valid(issuer, at=now))
    for key in valid:
        if signing.verify_digest(signing.load_public_key(key.public_key_pem), signature, digest):
            return key
    for key in all_keys:
        problem = signing_key_problem(key, at=now)
        if problem and signing.verify_digest(signing.load_public_key(key.public_key_pem), signature, digest):
            raise Refusal(f"signature: made with key {key.fingerprint[:16]}… of {issuer.code}, which is {problem}")
    if not valid:
        why = "; ".join(f"{k.fingerprint[:16]}… {signing_key_problem(k, at=now)}" for k in all_keys)
        raise Refusal(f"signature: issuer {issuer.code} has no valid signing key ({why})")
    tried = ", ".join(f"{k.fingerprint[:16]}…" for k in valid)
    raise Refusal(
        f"signature: does not verify over the file's exact bytes with any valid key of {issuer.code} (tried {tried});"
        " the file or the signature was altered, truncated, or signed by another key"
    )
