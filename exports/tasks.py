"""Celery tasks of the export pipeline (thin adapters over exports.services).

Beat: `exports.tasks.export_previous_month` at 02:00 Asia/Kabul on the 1st of each month.
It is idempotent, so beat may also run it daily to retry a failed month early. The same
loop runs from `manage.py export_regulator_report --pending`."""

from __future__ import annotations

from celery import shared_task

from core.actors import Actor
from exports.services import ExportFailed, regulator_export_catch_up


@shared_task(
    name="exports.tasks.export_previous_month",
    autoretry_for=(ExportFailed,),
    retry_backoff=300,
    # Below the broker's visibility timeout (CELERY_VISIBILITY_TIMEOUT, 900 s): a countdown
    # longer than it is redelivered while the worker still holds it (ADR 1502).
    retry_backoff_max=600,
    max_retries=8,
)
def export_previous_month() -> dict[str, str]:
    """Export last month plus every earlier period that is not UPLOADED yet. Raises
    ExportFailed when any period failed, so Celery retries."""
    outcome = regulator_export_catch_up(actor=Actor.system("celery:export_previous_month"))
    if not outcome.ok:
        raise ExportFailed(outcome.summary)
    return outcome.results
