from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from numbering import jobs


class Command(BaseCommand):
    help = "Reservation safety net: expire every RESERVED number past reserved_until (every 30 s in beat)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(jobs.reservations_expire_overdue().summary())
