"""Celery tasks of the export pipeline (thin adapters over exports.services).

Beat: `exports.tasks.export_previous_month` at 02:00 Asia/Kabul on the 1st of each month.
It is idempotent, so beat may also run it daily to retry a failed month early."""

from __future__ import annotations

import logging

from celery import shared_task

from core import errors
from core.actors import Actor
from exports.services import ExportFailed, regulator_export_pending_periods, regulator_export_run

logger = logging.getLogger(__name__)


@shared_task(
    name="exports.tasks.export_previous_month",
    autoretry_for=(ExportFailed,),
    retry_backoff=300,
    retry_backoff_max=3600,
    max_retries=6,
)
def export_previous_month() -> dict[str, str]:
    """Export last month plus every earlier period that is not UPLOADED yet (a failed run
    is retried here). Raises ExportFailed when any period failed, so Celery retries."""
    actor = Actor.system("celery:export_previous_month")
    results: dict[str, str] = {}
    failed: list[str] = []
    for period in regulator_export_pending_periods():
        try:
            results[period] = regulator_export_run(period=period, actor=actor).message
        except (ExportFailed, errors.Conflict) as exc:
            results[period] = str(exc)
            failed.append(period)
        except errors.ValidationError as exc:  # e.g. a recorded period that has not ended
            results[period] = exc.message
    if failed:
        raise ExportFailed(f"regulator export failed for {', '.join(failed)}: {results}")
    return results
