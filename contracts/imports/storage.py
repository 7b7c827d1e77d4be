"""Step 1 of an import: stream the upload and its detached signature to
INVENTORY_IMPORT_DIR (hashing and counting lines on the way) and create the
InventoryImport record (PENDING). Nothing is parsed here."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from django.conf import settings

from contracts import signing
from contracts.models import InventoryImport, Issuer
from contracts.selectors import active_contract, issuer_by_code
from core import errors
from core.actors import Actor

S = InventoryImport.Status


def _storage_dir() -> Path:
    path = Path(settings.INVENTORY_IMPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def csv_path(imp: InventoryImport) -> Path:
    return _storage_dir() / f"{imp.pk}.csv"


def signature_path(imp: InventoryImport) -> Path:
    return _storage_dir() / f"{imp.pk}.sig"


def chunks(source: bytes | IO[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray):
        for i in range(0, len(source), size):
            yield bytes(source[i : i + size])
        return
    while chunk := source.read(size):
        yield chunk


def import_create(
    *,
    issuer_code: str,
    csv_file: bytes | IO[bytes],
    signature: bytes | IO[bytes],
    actor: Actor,
    filename: str = "",
    mode: str = InventoryImport.Mode.ALL_OR_NOTHING,
) -> InventoryImport:
    """Store an upload and create its InventoryImport (PENDING). Nothing is parsed yet."""
    issuer = issuer_by_code(issuer_code)
    if issuer is None:
        known = ", ".join(Issuer.objects.values_list("code", flat=True)) or "none installed"
        raise errors.ImportRefused(f"issuer: unknown issuer code {issuer_code!r} (known: {known})", field="issuer")
    if issuer.deactivated_at is not None:  # deactivated, never deleted (ADR 1620)
        raise errors.ImportRefused(f"issuer: {issuer.code} is deactivated; it takes no imports", field="issuer")
    if mode not in InventoryImport.Mode.values:
        raise errors.ImportRefused(
            f"mode: {mode!r} is not one of {', '.join(InventoryImport.Mode.values)}", field="mode"
        )
    sig = signature if isinstance(signature, bytes) else signature.read(signing.MAX_SIGNATURE_BYTES + 1)
    directory = _storage_dir()
    digest, size, newlines, last = hashlib.sha256(), 0, 0, b""
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".upload")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks(csv_file):
                size += len(chunk)
                if size > settings.INVENTORY_IMPORT_MAX_BYTES:
                    raise errors.ImportRefused(
                        f"csv: file is larger than {settings.INVENTORY_IMPORT_MAX_BYTES} bytes "
                        "(INVENTORY_IMPORT_MAX_BYTES)",
                        field="csv",
                    )
                digest.update(chunk)
                newlines += chunk.count(b"\n")
                last = chunk[-1:]
                out.write(chunk)
        lines = newlines + (1 if size and last != b"\n" else 0)
        imp = InventoryImport.objects.create(
            issuer=issuer,
            contract=active_contract(issuer),
            filename=filename[:255],
            file_sha256=digest.hexdigest(),
            mode=mode,
            status=S.PENDING,
            total_rows=max(lines - 1, 0),
            created_by=actor.identity,
        )
        os.replace(tmp, csv_path(imp))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    signature_path(imp).write_bytes(sig)
    return imp


def import_set_mode(*, import_id: int, mode: str) -> InventoryImport:
    if mode not in InventoryImport.Mode.values:
        raise errors.ValidationError(
            f"mode: {mode!r} is not one of {', '.join(InventoryImport.Mode.values)}", field="mode"
        )
    InventoryImport.objects.filter(pk=import_id).exclude(status=S.COMMITTED).update(mode=mode)
    return InventoryImport.objects.get(pk=import_id)
