"""Verification of a stored regulator export (the `verify_export` command, the admin
action, POST /exports/{id}/verify/): download the manifest and the CSV and check them
against each other, the signing key and the bucket's Object Lock. Reads only."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from core import clock
from core import worm as storage
from core.periods import parse_period
from core.signing import SigningError, get_provider, verify_signature
from exports.models import RegulatorExport
from exports.report import manifest_signing_bytes, object_keys


@dataclass
class ExportVerification:
    period: str
    checks: list[str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _lock_problems(name: str, meta: dict[str, Any]) -> list[str]:
    mode, until = meta.get("ObjectLockMode"), meta.get("ObjectLockRetainUntilDate")
    stored_at = meta.get("LastModified") or clock.now()
    if mode != storage.COMPLIANCE:
        return [f"{name}: Object Lock mode is {mode or 'none'}, expected COMPLIANCE"]
    if until is None or until < storage.minimum_retain_until(stored_at):
        return [f"{name}: retain-until {until} is less than {settings.EXPORT_RETENTION_YEARS} years after upload"]
    return []


def regulator_export_verify(period: str) -> ExportVerification:
    """Download the manifest and CSV of a period and check: the manifest signature (public
    key from the provider by key id), the CSV's SHA-256, size and row count, the CSV version
    the manifest names, and COMPLIANCE retention of both objects."""
    parse_period(period)
    result = ExportVerification(period, [], [])
    record = RegulatorExport.objects.filter(period=period).first()
    csv_key, manifest_key = object_keys(period)
    bucket, manifest_version = settings.EXPORT_BUCKET, None
    if record is not None and record.status == RegulatorExport.Status.UPLOADED:
        bucket, manifest_key, manifest_version = record.bucket, record.manifest_key, record.manifest_version_id
    else:
        state = record.status if record else "not recorded"
        result.problems.append(f"period {period}: export is {state} in the database; checking the bucket as is")
    try:
        body, meta = storage.open_object(manifest_key, manifest_version, bucket=bucket)
        raw = body.read()
        result.problems += _lock_problems("manifest", meta)
        manifest = json.loads(raw)
        signature = manifest.get("signature", "")
        public = get_provider().public_key(manifest.get("key_id", ""))
        if verify_signature(public, manifest_signing_bytes(manifest), signature):
            result.checks.append(f"manifest signature valid (key {manifest['key_id']})")
        else:
            result.problems.append(f"manifest signature does NOT verify with key {manifest.get('key_id')}")
        if manifest.get("period") != period:
            result.problems.append(f"manifest is for period {manifest.get('period')!r}, not {period}")
        described = manifest.get("csv", {})
        body, meta = storage.open_object(described.get("key", csv_key), described.get("version_id"), bucket=bucket)
        result.problems += _lock_problems("csv", meta)
        with tempfile.TemporaryFile(dir=settings.EXPORT_TMP_DIR) as tmp:
            digest, size = hashlib.sha256(), 0
            for chunk in body.iter_chunks(chunk_size=1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
                tmp.write(chunk)
            tmp.seek(0)
            rows = sum(1 for _ in csv.reader(io.TextIOWrapper(tmp, encoding="utf-8", newline=""))) - 1
    except (storage.StorageError, SigningError, ValueError, KeyError, AttributeError) as exc:
        result.problems.append(f"could not read the export: {exc}")
        return result
    if digest.hexdigest() != described.get("sha256"):
        result.problems.append(f"csv sha256 {digest.hexdigest()} differs from the manifest's {described.get('sha256')}")
    else:
        result.checks.append(f"csv sha256 matches ({digest.hexdigest()})")
    if record is not None and record.sha256 and record.sha256 != digest.hexdigest():
        result.problems.append("csv sha256 differs from the one recorded in the database")
    if size != described.get("size_bytes"):
        result.problems.append(f"csv is {size} bytes, the manifest says {described.get('size_bytes')}")
    if rows != manifest.get("row_count"):
        result.problems.append(f"csv has {rows} rows, the manifest says {manifest.get('row_count')}")
    else:
        result.checks.append(f"row count matches ({rows})")
    if sum(t.get("total", 0) for t in manifest.get("totals", [])) != manifest.get("row_count"):
        result.problems.append("utilisation totals do not add up to the row count")
    if not any("Object Lock" in p or "retain-until" in p for p in result.problems):
        result.checks.append("both objects locked COMPLIANCE for the retention period")
    return result
