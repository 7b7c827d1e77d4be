from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from contracts.demo import seed_demo


class Command(BaseCommand):
    help = "Development only: demo issuers, keys, signed imports, pools, tenants and every lifecycle state."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = seed_demo()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        for line in report.lines:
            self.stdout.write(f"[seed-demo] {line}")
