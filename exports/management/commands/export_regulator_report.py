from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core import errors
from core.actors import Actor
from core.periods import previous_period
from exports.services import ExportFailed, regulator_export_catch_up, regulator_export_run


class Command(BaseCommand):
    help = "Export one finished month (YYYY-MM, default last month) to the WORM bucket. Idempotent."

    def add_arguments(self, parser: Any) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--period", default=None, help="YYYY-MM; default: the previous month (Asia/Kabul)")
        which.add_argument(
            "--pending",
            action="store_true",
            help="last month plus every earlier month not uploaded yet (what the monthly Celery task runs)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("export_regulator_report")
        if options["pending"]:
            caught_up = regulator_export_catch_up(actor=actor)
            for period, message in caught_up.results.items():
                self.stdout.write(f"{period}: {message}")
            if not caught_up.ok:
                raise CommandError(f"{caught_up.summary} (recorded as FAILED; run again to retry)", returncode=1)
            return
        period = options["period"] or previous_period().name
        try:
            outcome = regulator_export_run(period=period, actor=actor)
        except errors.DomainError as exc:
            raise CommandError(exc.message, returncode=2 if exc.code == "VALIDATION_ERROR" else 1) from exc
        except ExportFailed as exc:
            raise CommandError(f"{exc} (recorded as FAILED; run again to retry)", returncode=1) from exc
        self.stdout.write(outcome.message)
