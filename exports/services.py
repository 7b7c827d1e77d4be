"""Monthly regulator export (DESIGN §7) and the ad-hoc inventory CSV for staff.

The monthly export, for a period YYYY-MM (calendar month in TIME_ZONE, Asia/Kabul):
1. claim the period (RegulatorExport row, status RUNNING; an advisory lock keeps two
   runners apart) — a period already UPLOADED is left alone and said so;
2. stream every number's state at period end (ADR 0700) to a temp file, formula-safe,
   counting utilisation totals on the way (bounded memory: a server-side cursor);
3. a JSON manifest (period, generated_at, row count, SHA-256 and version of the CSV,
   totals, key id) signed over its canonical form by the key provider;
4. upload the CSV then the manifest with Object Lock COMPLIANCE, retain-until = upload +
   7 years, each read back with head_object; record everything on the row, UPLOADED.
Any failure leaves the row FAILED with the error, counts a metric, and the next run
retries the period.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import tempfile
import zoneinfo
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from core import errors
from core import worm as storage
from core.actors import Actor
from core.csv_safety import SafeCsvWriter, csv_line
from core.formats import parse_uuid
from core.outbox import outbox_enqueue
from core.rls import rls_scope
from core.signing import SigningError, get_provider, sign_document, signing_bytes, verify_signature
from exports.metrics import EXPORT_FAILURES
from exports.models import RegulatorExport
from numbering.models import Lease, Number
from numbering.selectors import number_criteria_q
from pools.models import Tenant

logger = logging.getLogger(__name__)

MANIFEST_SCHEMA = "numbering.regulator-export.v1"
CATEGORIES = ("assigned", "reserved", "aging", "administrative", "available")
CATEGORY_OF_STATE = {
    "ASSIGNED": "assigned",
    "RESERVED": "reserved",
    "QUARANTINED": "aging",
    "RETIRED": "administrative",
    "AVAILABLE": "available",
}
CSV_COLUMNS = [
    "number", "kind", "issuer_code", "issuer_name", "contract_reference", "block", "vanity_tier",
    "state", "category", "holder_registration_no", "holder_name", "lease_starts_at", "lease_expires_at",
    "state_source",
]  # fmt: skip
FETCH_SIZE = 2000
_PERIOD = re.compile(r"(?P<year>20[0-9]{2})-(?P<month>0[1-9]|1[0-2])")


class ExportNotFound(errors.DomainError):
    code = "NOT_FOUND"


class ExportFailed(Exception):
    """A run did not complete; the period's row is FAILED and the next run retries it."""


# --- periods -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    name: str
    start: datetime
    end: datetime  # exclusive: the first instant of the next month, local time


def parse_period(value: str, *, now: datetime | None = None, finished: bool = True) -> Period:
    match = _PERIOD.fullmatch(value or "")
    if match is None:
        raise errors.ValidationError(f"period: {value!r} must be a month as YYYY-MM (e.g. 2026-10)", field="period")
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    year, month = int(match["year"]), int(match["month"])
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    if finished and end > (now or timezone.now()):
        raise errors.ValidationError(
            f"period: {value} has not ended yet (it ends {end.isoformat()}); export a finished month", field="period"
        )
    return Period(value, start, end)


def previous_period(now: datetime | None = None) -> str:
    local = (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE))
    last_month = local.replace(day=1) - timedelta(days=1)
    return f"{last_month.year:04d}-{last_month.month:02d}"


def object_keys(period: str) -> tuple[str, str]:
    base = f"{settings.EXPORT_PREFIX}/{period}/numbering-{period}"
    return f"{base}.csv", f"{base}.manifest.json"


# --- state at period end (ADR 0700) ----------------------------------------------------------------

# For each number that existed before the period end: the `after` snapshot of its last
# audit event before the end; failing that the `before` snapshot of its first event after
# the end (nothing changed in between); failing that its current row. The audit_object
# index (object_type, object_id, occurred_at) serves both lateral lookups.
_STATE_SQL = """
SELECT n.number, n.kind, i.code, i.name, c.reference, b.name, n.vanity_tier,
       n.state, n.tenant_id::text, l.starts_at, l.expires_at,
       lb.after -> 'number', fa.before
FROM numbering_number n
JOIN contracts_issuer i ON i.id = n.issuer_id
LEFT JOIN contracts_numberblock b ON b.id = n.block_id
LEFT JOIN contracts_contract c ON c.id = b.contract_id
LEFT JOIN numbering_lease l ON l.number_id = n.id AND l.status = 'ACTIVE'
LEFT JOIN LATERAL (
    SELECT a.after FROM audit_auditevent a
    WHERE a.object_type = 'number' AND a.object_id = n.number AND a.occurred_at < %(end)s
      AND a.after -> 'number' ->> 'state' IS NOT NULL
    ORDER BY a.occurred_at DESC, a.id DESC LIMIT 1
) lb ON true
LEFT JOIN LATERAL (
    SELECT a.before FROM audit_auditevent a
    WHERE lb.after IS NULL AND a.object_type = 'number' AND a.object_id = n.number
      AND a.occurred_at >= %(end)s AND a.before ->> 'state' IS NOT NULL
    ORDER BY a.occurred_at ASC, a.id ASC LIMIT 1
) fa ON true
WHERE n.created_at < %(end)s
ORDER BY n.number
"""


class _Holders:
    """Tenant (registration no., name) by id, loaded on first sight: tenants are few next
    to numbers, so this stays small while the rows stream."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, str]] = {}

    def get(self, tenant_id: str | None) -> tuple[str, str]:
        if not tenant_id:
            return "", ""
        if tenant_id not in self._cache:
            tenant = Tenant.objects.filter(id=tenant_id).values_list("registration_no", "name").first()
            self._cache[tenant_id] = (tenant[0], tenant[1]) if tenant else ("", f"(unknown tenant {tenant_id})")
        return self._cache[tenant_id]


def _iso(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return value.astimezone(zoneinfo.ZoneInfo("UTC")).isoformat()
    return str(value)


def _json(value: Any) -> Any:
    # Django hands jsonb to raw cursors as text.
    return json.loads(value) if isinstance(value, str | bytes) else value


def _snapshot(after: Any, before: Any) -> tuple[dict[str, Any] | None, str]:
    if after is not None:
        return _json(after), "event"
    if before is not None:
        return _json(before), "next-event"
    return None, "current"


@dataclass
class GeneratedCsv:
    row_count: int
    totals: list[dict[str, Any]]
    sha256: str
    size: int


def write_regulator_csv(period: Period, handle: Any) -> GeneratedCsv:
    """Stream the period-end rows into `handle` (binary) and return counts and totals."""
    digest = hashlib.sha256()
    size = 0

    class _Sink(io.TextIOBase):
        def write(self, text: str) -> int:  # type: ignore[override]
            nonlocal size
            data = text.encode("utf-8")
            digest.update(data)
            handle.write(data)
            size += len(data)
            return len(text)

    writer = SafeCsvWriter(_Sink())
    writer.writerow(CSV_COLUMNS)
    totals: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(CATEGORIES, 0))
    holders = _Holders()
    rows = 0
    with transaction.atomic(), rls_scope(platform=True):
        with connection.chunked_cursor() as cursor:
            cursor.execute(_STATE_SQL, {"end": period.end})
            while batch := cursor.fetchmany(FETCH_SIZE):
                for (
                    number,
                    kind,
                    issuer_code,
                    issuer_name,
                    contract,
                    block,
                    tier,
                    state,
                    tenant_id,
                    l_start,
                    l_end,
                    after,
                    before,
                ) in batch:
                    snapshot, source = _snapshot(after, before)
                    if snapshot is not None:
                        state, tenant_id = snapshot.get("state"), snapshot.get("tenant_id")
                        lease = snapshot.get("lease") or {}
                        l_start, l_end = lease.get("starts_at"), lease.get("expires_at")
                    if state != "ASSIGNED":
                        l_start = l_end = None
                    category = CATEGORY_OF_STATE.get(state or "", "available")
                    reg_no, name = holders.get(tenant_id if state in {"ASSIGNED", "RESERVED"} else None)
                    writer.writerow([
                        number, kind, issuer_code, issuer_name, contract or "", block or "", tier, state, category,
                        reg_no, name, _iso(l_start), _iso(l_end), source,
                    ])  # fmt: skip
                    totals[(issuer_code, kind, block or "")][category] += 1
                    rows += 1
    table = [
        {"issuer": issuer, "kind": kind, "block": block, **counts, "total": sum(counts.values())}
        for (issuer, kind, block), counts in sorted(totals.items())
    ]
    return GeneratedCsv(rows, table, digest.hexdigest(), size)


# --- the run -------------------------------------------------------------------------------------


@dataclass
class ExportOutcome:
    export: RegulatorExport
    uploaded: bool  # False: the period was already uploaded, nothing changed
    message: str


def _lock_key(period: str) -> int:
    return int.from_bytes(hashlib.sha256(f"regulator-export:{period}".encode()).digest()[:8], "big", signed=True)


def _claim(period: str) -> tuple[RegulatorExport, bool]:
    with transaction.atomic():
        record, _ = RegulatorExport.objects.get_or_create(period=period)
        record = RegulatorExport.objects.select_for_update().get(pk=record.pk)
        if record.status == RegulatorExport.Status.UPLOADED:
            return record, False
        record.status = RegulatorExport.Status.RUNNING
        record.attempts += 1
        record.error = ""
        record.save(update_fields=["status", "attempts", "error", "updated_at"])
        return record, True


def _fail(record: RegulatorExport, exc: BaseException) -> None:
    EXPORT_FAILURES.inc()
    with transaction.atomic():
        RegulatorExport.objects.filter(pk=record.pk).update(
            status=RegulatorExport.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000], updated_at=timezone.now()
        )
    logger.error("regulator export %s failed: %s", record.period, exc)


def build_manifest(
    *, period: Period, generated_at: datetime, generated: GeneratedCsv, csv_object: storage.StoredObject, key_id: str
) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        "period": period.name,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "time_zone": settings.TIME_ZONE,
        "generated_at": generated_at.isoformat(),
        "row_count": generated.row_count,
        "csv": {
            "bucket": csv_object.bucket,
            "key": csv_object.key,
            "version_id": csv_object.version_id,
            "sha256": generated.sha256,
            "size_bytes": generated.size,
            "columns": CSV_COLUMNS,
        },
        "categories": {
            "assigned": "ASSIGNED",
            "reserved": "RESERVED",
            "aging": "QUARANTINED",
            "administrative": "RETIRED",
            "available": "AVAILABLE",
        },  # fmt: skip
        "totals": generated.totals,
        "state_at_period_end": "after-state of the number's last audit event before period_end; else the"
        " before-state of its first event after it; else its current state (ADR 0700)",
        "formula_cells": "cells starting with = + - @ tab or CR are prefixed with a single quote (bare E.164 kept)",
        "key_id": key_id,
    }


def manifest_signing_bytes(manifest: dict[str, Any]) -> bytes:
    """The canonical form the signature covers: the manifest without its signature."""
    return signing_bytes(manifest)


def regulator_export_run(*, period: str, actor: Actor, now: datetime | None = None) -> ExportOutcome:
    """Export one finished month. Idempotent: an UPLOADED period is never redone."""
    parsed = parse_period(period, now=now)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(period)])
        (locked,) = cursor.fetchone()
    if not locked:
        raise errors.Conflict(f"the export of {period} is already running elsewhere; try again later", field="period")
    try:
        return _run(parsed, actor)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(period)])


def _run(period: Period, actor: Actor) -> ExportOutcome:
    record, claimed = _claim(period.name)
    if not claimed:
        return ExportOutcome(record, False, f"export {period.name} was already uploaded on "
                             f"{record.updated_at:%Y-%m-%d %H:%M} UTC; nothing changed")  # fmt: skip
    csv_key, manifest_key = object_keys(period.name)
    try:
        provider = get_provider()
        with tempfile.NamedTemporaryFile(
            prefix=f"export-{period.name}-", suffix=".csv", dir=settings.EXPORT_TMP_DIR
        ) as tmp:
            generated_at = timezone.now()
            generated = write_regulator_csv(period, tmp)
            tmp.flush()
            csv_object = storage.put_locked(csv_key, Path(tmp.name), content_type="text/csv; charset=utf-8")
        if csv_object.size != generated.size:
            raise storage.StorageError(f"{csv_key}: stored {csv_object.size} bytes, wrote {generated.size}")
        manifest = sign_document(
            build_manifest(
                period=period, generated_at=generated_at, generated=generated, csv_object=csv_object, key_id=""
            ),
            provider,
        )
        body = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        manifest_object = storage.put_locked(manifest_key, body, content_type="application/json")
    except Exception as exc:  # noqa: BLE001 - whatever broke, the run is recorded FAILED and retried
        _fail(record, exc)
        raise ExportFailed(f"export {period.name} failed: {exc}") from exc
    with transaction.atomic():
        record = RegulatorExport.objects.select_for_update().get(pk=record.pk)
        record.status = RegulatorExport.Status.UPLOADED
        record.row_count = generated.row_count
        record.sha256 = generated.sha256
        record.signature = str(manifest["signature"])
        record.key_id = str(manifest["key_id"])
        record.bucket = csv_object.bucket
        record.csv_key, record.csv_version_id = csv_object.key, csv_object.version_id
        record.manifest_key, record.manifest_version_id = manifest_object.key, manifest_object.version_id
        record.retain_until = min(csv_object.retain_until, manifest_object.retain_until)
        record.generated_at = generated_at
        record.uploaded_at = timezone.now()
        record.triggered_by = actor.identity
        record.totals = generated.totals
        record.error = ""
        record.save()
        outbox_enqueue(
            event_type="numbering.export.submitted.v1", aggregate_id=f"regulator-export:{period.name}",
            data={
                "period": period.name, "bucket": record.bucket, "row_count": record.row_count,
                "csv_key": record.csv_key, "csv_version_id": record.csv_version_id, "sha256": record.sha256,
                "manifest_key": record.manifest_key, "manifest_version_id": record.manifest_version_id,
                "key_id": record.key_id, "retain_until": record.retain_until.isoformat(),
            },
            subject="numbering.export.submitted.v1",
        )  # fmt: skip
    return ExportOutcome(
        record, True,
        f"export {period.name} uploaded: {record.row_count} rows, sha256 {record.sha256[:16]}…, "
        f"s3://{record.bucket}/{record.csv_key} (version {record.csv_version_id}), "
        f"locked until {record.retain_until:%Y-%m-%d}",
    )  # fmt: skip


def regulator_export_pending_periods(*, now: datetime | None = None) -> list[str]:
    """Last month plus every earlier period whose export is not UPLOADED (failed runs)."""
    periods = {previous_period(now)}
    periods.update(
        RegulatorExport.objects.exclude(status=RegulatorExport.Status.UPLOADED).values_list("period", flat=True)
    )
    return sorted(periods)


# --- REST-ready reads ----------------------------------------------------------------------------------


def regulator_export_list() -> QuerySet[RegulatorExport]:
    return RegulatorExport.objects.order_by("-period")


def regulator_export_open(period: str, which: str = "csv") -> tuple[Iterator[bytes], str, str]:
    """(byte chunks, file name, content type) of the stored CSV or manifest, for a
    StreamingHttpResponse. Reads the exact recorded version."""
    if which not in {"csv", "manifest"}:
        raise errors.ValidationError(f"which: {which!r} must be csv or manifest", field="which")
    record = RegulatorExport.objects.filter(period=period, status=RegulatorExport.Status.UPLOADED).first()
    if record is None:
        raise ExportNotFound(f"no uploaded export for period {period}", field="period")
    key, version = (
        (record.csv_key, record.csv_version_id) if which == "csv" else (record.manifest_key, record.manifest_version_id)
    )
    body, _ = storage.open_object(key, version, bucket=record.bucket)
    content_type = "text/csv; charset=utf-8" if which == "csv" else "application/json"
    return body.iter_chunks(chunk_size=64 * 1024), key.rsplit("/", 1)[-1], content_type


# --- verification -------------------------------------------------------------------------------------


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
    stored_at = meta.get("LastModified") or timezone.now()
    if mode != storage.COMPLIANCE:
        return [f"{name}: Object Lock mode is {mode or 'none'}, expected COMPLIANCE"]
    if until is None or until < storage.minimum_retain_until(stored_at):
        return [f"{name}: retain-until {until} is less than {settings.EXPORT_RETENTION_YEARS} years after upload"]
    return []


def regulator_export_verify(period: str) -> ExportVerification:
    """Download the manifest and CSV of a period and check: the manifest signature (public
    key from the provider by key id), the CSV's SHA-256, size and row count, the CSV version
    the manifest names, and COMPLIANCE retention of both objects."""
    parse_period(period, finished=False)
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


# --- ad-hoc inventory CSV for staff -------------------------------------------------------------------

INVENTORY_COLUMNS = [
    "number", "kind", "state", "issuer_code", "vanity", "vanity_tier", "pool", "block", "contract_reference",
    "holder_registration_no", "holder_name", "reserved_until", "quarantine_until", "lease_expires_at",
    "state_changed_at", "version",
]  # fmt: skip
INVENTORY_FILTERS = ("state", "kind", "issuer", "vanity_tier", "tenant", "pool", "prefix")


def _inventory_queryset(filters: dict[str, str]) -> QuerySet[Number]:
    unknown = set(filters) - set(INVENTORY_FILTERS)
    if unknown:
        name = sorted(unknown)[0]
        raise errors.ValidationError(f"{name}: unknown filter (use {', '.join(INVENTORY_FILTERS)})", field=name)
    qs = Number.objects.all()
    # Trimmed, except the vanity tier, which is matched exactly as stored.
    value = {k: (v or "") if k == "vanity_tier" else (v or "").strip() for k, v in filters.items()}
    if value.get("state"):
        states = {s.strip().upper() for s in value["state"].split(",")}
        bad = states - set(CATEGORY_OF_STATE)
        if bad:
            raise errors.ValidationError(f"state: {sorted(bad)[0]!r} is not a number state", field="state")
        qs = qs.filter(state__in=states)
    if value.get("kind") and value["kind"].upper() not in Number.Kind.values:
        raise errors.ValidationError(f"kind: {value['kind']!r} must be MSISDN or SHORT_CODE", field="kind")
    if value.get("tenant"):
        qs = qs.filter(tenant_id=parse_uuid(value["tenant"], field="tenant"))
    if value.get("pool"):
        qs = qs.filter(pool__code=value["pool"])
    # kind, issuer, vanity tier and prefix mean what they mean in the numbers list.
    return qs.filter(
        number_criteria_q(
            kind=value.get("kind", "").upper() or None,
            issuer=value.get("issuer") or None,
            prefix=value.get("prefix") or None,
            vanity_tier=value.get("vanity_tier") or None,
        )
    )


def inventory_csv_rows(filters: dict[str, str], *, actor: Actor) -> Iterator[str]:
    """Formula-safe CSV lines of the numbers matching the numbers-list filters, streamed
    (server-side cursor) for a StreamingHttpResponse. Staff only: reads in platform scope.
    Bad filters raise ValidationError before the first line is produced."""
    if actor.is_tenant:
        raise errors.ValidationError("actor: the inventory export is for staff, not tenants", field="actor")
    qs = _inventory_queryset(filters)  # validates now, not on first iteration
    return _inventory_lines(qs)


def _inventory_lines(qs: QuerySet[Number]) -> Iterator[str]:
    yield csv_line(INVENTORY_COLUMNS)
    active_lease = Lease.objects.filter(number=OuterRef("pk"), status=Lease.Status.ACTIVE).values("expires_at")[:1]
    rows = (
        qs.select_related("issuer", "pool", "block__contract", "tenant")
        .annotate(lease_expires_at=Subquery(active_lease))
        .order_by("number")
    )
    with transaction.atomic(), rls_scope(platform=True):
        for n in rows.iterator(chunk_size=FETCH_SIZE):
            yield csv_line([
                n.number, n.kind, n.state, n.issuer.code, n.vanity, n.vanity_tier, n.pool.code if n.pool else "",
                n.block.name if n.block else "", n.block.contract.reference if n.block and n.block.contract else "",
                n.tenant.registration_no if n.tenant else "", n.tenant.name if n.tenant else "",
                n.reserved_until, n.quarantine_until, n.lease_expires_at, n.state_changed_at, n.version,
            ])  # fmt: skip
