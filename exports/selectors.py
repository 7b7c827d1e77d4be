"""Reads of regulator exports: the list, one export, the periods still to run, and the
stored objects of an uploaded export."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet

from core import errors
from core import worm as storage
from core.periods import previous_period
from exports.models import RegulatorExport


class ExportNotFound(errors.DomainError):
    code = "NOT_FOUND"


def regulator_export_list() -> QuerySet[RegulatorExport]:
    return RegulatorExport.objects.order_by("-period")


def regulator_export_find(*, period: str | None = None, pk: int | None = None) -> RegulatorExport | None:
    """One export by its period (YYYY-MM) or its id; None when there is none."""
    if period is not None:
        return RegulatorExport.objects.filter(period=period).first()
    if pk is not None:
        return RegulatorExport.objects.filter(pk=pk).first()
    return None


def regulator_export_pending_periods() -> list[str]:
    """Last month (by the clock) plus every earlier period whose export is not UPLOADED
    (failed runs, and runs that died before recording an outcome)."""
    periods = {previous_period().name}
    periods.update(
        RegulatorExport.objects.exclude(status=RegulatorExport.Status.UPLOADED).values_list("period", flat=True)
    )
    return sorted(periods)


def regulator_export_open(period: str, which: str = "csv") -> tuple[Iterator[bytes], str, str]:
    """(byte chunks, file name, content type) of the stored CSV or manifest, for a
    StreamingHttpResponse. Reads the exact recorded version."""
    if which not in {"csv", "manifest"}:
        raise errors.ValidationError(f"which: {which!r} must be csv or manifest", field="which")
    record = RegulatorExport.objects.filter(period=period).first()
    if record is None:
        raise ExportNotFound(f"no uploaded export for period {period}", field="period")
    if record.status != RegulatorExport.Status.UPLOADED:
        raise ExportNotFound(f"export {period} is {record.status}; only an UPLOADED export has files", field="period")
    key, version = (
        (record.csv_key, record.csv_version_id) if which == "csv" else (record.manifest_key, record.manifest_version_id)
    )
    body, _ = storage.open_object(key, version, bucket=record.bucket)
    content_type = "text/csv; charset=utf-8" if which == "csv" else "application/json"
    return body.iter_chunks(chunk_size=64 * 1024), key.rsplit("/", 1)[-1], content_type
