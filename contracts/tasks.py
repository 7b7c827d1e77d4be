"""Celery tasks for contracts. Thin: the work is contracts.imports.run_import and
contracts.wind_down.contracts_enforce."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from contracts.imports import run_import
from contracts.wind_down import contracts_enforce


@shared_task(name="contracts.run_import", acks_late=True, ignore_result=False)
def run_import_task(import_id: int, mode: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    # Idempotent: a committed import or an already-imported file is a no-op, so a
    # redelivered message (acks_late after a worker crash) is harmless.
    outcome = run_import(import_id, mode=mode, dry_run=dry_run).as_dict()
    outcome.pop("report", None)
    return outcome


@shared_task(name="contracts.tasks.contracts_enforce")
def contracts_enforce_task() -> dict[str, Any]:
    result = contracts_enforce()
    return {"skipped": result.skipped, **result.counts, **result.extra}


@shared_task(name="contracts.tasks.purge_import_uploads")
def purge_import_uploads_task() -> dict[str, Any]:
    from contracts.imports.retention import purge_import_uploads

    result = purge_import_uploads()
    return {"purged": result.purged, "skipped": result.skipped}
