from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core import errors
from core.actors import Actor
from exports.services import ExportFailed, previous_period, regulator_export_run


class Command(BaseCommand):
    help = "Export one finished month (YYYY-MM, default last month) to the WORM bucket. Idempotent."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--period", default=None, help="YYYY-MM; default: the previous month (Asia/Kabul)")

    def handle(self, *args: Any, **options: Any) -> None:
        period = options["period"] or previous_period()
        try:
            outcome = regulator_export_run(period=period, actor=Actor.system("export_regulator_report"))
        except errors.DomainError as exc:
            raise CommandError(exc.message, returncode=2 if exc.code == "VALIDATION_ERROR" else 1) from exc
        except ExportFailed as exc:
            raise CommandError(f"{exc} (recorded as FAILED; run again to retry)", returncode=1) from exc
        self.stdout.write(outcome.message)
