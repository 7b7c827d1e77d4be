from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from numbering import cache_sync


class Command(BaseCommand):
    help = (
        "Compare the lease cache entries of recently changed numbers with PostgreSQL and repair"
        " what differs (the beat job runs it every minute; ADR 1200)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sample", type=int, default=None, help="default: LEASE_CACHE_RECONCILE_SAMPLE")

    def handle(self, *args: Any, **options: Any) -> None:
        sample = options["sample"]
        if sample is not None and sample < 1:
            from django.core.management.base import CommandError

            raise CommandError("--sample: must be at least 1")
        checked, divergent = cache_sync.reconcile(sample)
        self.stdout.write(f"lease cache: {checked} entries checked, {divergent} divergent (repaired)")
