from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from numbering import jobs


class Command(BaseCommand):
    help = "Quarantine sweep: QUARANTINED numbers whose quarantine_until has passed become AVAILABLE."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(jobs.quarantine_sweep().summary())
