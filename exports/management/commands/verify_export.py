from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core import errors
from exports.verify import regulator_export_verify


class Command(BaseCommand):
    help = "Download a period's manifest and CSV and check hash, signature and Object Lock; exit 0 when all hold."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--period", required=True, help="YYYY-MM")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = regulator_export_verify(options["period"])
        except errors.DomainError as exc:
            raise CommandError(exc.message, returncode=2) from exc
        for check in result.checks:
            self.stdout.write(f"OK    {check}")
        for problem in result.problems:
            self.stderr.write(f"FAIL  {problem}")
        if not result.ok:
            raise CommandError(
                f"export {result.period} does NOT verify ({len(result.problems)} problem(s))", returncode=1
            )
        self.stdout.write(f"export {result.period} verified")
