from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from numbering import jobs


class Command(BaseCommand):
    help = "Lease auto-renewal: renew auto-renew leases of ACTIVE tenants that end within the renewal window."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--window-days", type=int, default=None, help="default: LEASE_RENEWAL_WINDOW_DAYS")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(jobs.leases_auto_renew(window_days=options["window_days"]).summary())
