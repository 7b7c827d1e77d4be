"""The monthly regulator export run (DESIGN §7) and the loop that keeps every month exported.

A run, for a period YYYY-MM (calendar month in TIME_ZONE, Asia/Kabul; core.periods):
1. claim the period (RegulatorExport row, status RUNNING; an advisory lock keeps two
   runners apart) — a period already UPLOADED is left alone and said so;
2. stream every number's state at period end (exports.report, ADR 0700) to a temp file,
   formula-safe, counting utilisation totals on the way (bounded memory: a server-side cursor);
3. a JSON manifest (period, generated_at, row count, SHA-256 and version of the CSV,
   totals, key id) signed over its canonical form by the key provider (core.signing);
4. upload the CSV then the manifest with Object Lock COMPLIANCE (core.worm), retain-until =
   upload + 7 years, each read back with head_object; record everything on the row,
   UPLOADED, with its outbox event in the same transaction.
Any failure leaves the row FAILED with the error, counts a metric, and the next run
retries the period (`regulator_export_catch_up`, run monthly by Celery beat).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from core import clock, errors
from core import worm as storage
from core.actors import Actor
from core.locks import job_lock
from core.outbox import outbox_enqueue
from core.periods import Period, parse_period
from core.signing import get_provider, sign_document
from exports.metrics import EXPORT_FAILURES
from exports.models import RegulatorExport
from exports.report import build_manifest, object_keys, write_regulator_csv
from exports.selectors import regulator_export_pending_periods

logger = logging.getLogger(__name__)


class ExportFailed(Exception):
    """A run did not complete; the period's row is FAILED and the next run retries it."""


@dataclass
class ExportOutcome:
    export: RegulatorExport
    uploaded: bool  # False: the period was already uploaded, nothing changed
    message: str


def lock_name(period: str) -> str:
    """The job lock (core.locks) that keeps two runs of one period apart."""
    return f"regulator-export:{period}"


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
            status=RegulatorExport.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000], updated_at=clock.now()
        )
    logger.error("regulator export %s failed: %s", record.period, exc)


def regulator_export_run(*, period: str, actor: Actor) -> ExportOutcome:
    """Export one finished month. Idempotent: an UPLOADED period is never redone."""
    parsed = parse_period(period).require_ended()
    with job_lock(lock_name(parsed.name)) as locked:
        if not locked:
            raise errors.Conflict(
                f"the export of {period} is already running elsewhere; try again later", field="period"
            )
        return _run(parsed, actor)


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
            generated_at = clock.now()
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
        record.uploaded_at = clock.now()
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


# --- the monthly loop ----------------------------------------------------------------------------


@dataclass
class CatchUpOutcome:
    results: dict[str, str] = field(default_factory=dict)  # period -> what happened
    failed: list[str] = field(default_factory=list)  # periods to retry

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def summary(self) -> str:
        if self.ok:
            return "; ".join(f"{period}: {message}" for period, message in self.results.items())
        return f"regulator export failed for {', '.join(self.failed)}: {self.results}"


def regulator_export_catch_up(*, actor: Actor) -> CatchUpOutcome:
    """Export last month plus every earlier period that is not UPLOADED yet, so a failed
    month is retried by the next call. A period that has not ended is skipped (its message
    says why); a failure, or a run of the same period in progress elsewhere, is listed in
    `failed` and does not stop the other periods."""
    outcome = CatchUpOutcome()
    for period in regulator_export_pending_periods():
        try:
            outcome.results[period] = regulator_export_run(period=period, actor=actor).message
        except (ExportFailed, errors.Conflict) as exc:
            outcome.results[period] = str(exc)
            outcome.failed.append(period)
        except errors.ValidationError as exc:  # e.g. a recorded period that has not ended
            outcome.results[period] = exc.message
    return outcome
