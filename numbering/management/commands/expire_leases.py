from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from numbering import jobs


class Command(BaseCommand):
    help = "Lease expiry: ACTIVE leases past expires_at are ended and their numbers QUARANTINED."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(jobs.leases_expire().summary())
