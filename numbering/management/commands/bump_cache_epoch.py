from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from numbering import cache_epoch


class Command(BaseCommand):
    help = (
        "Give the lease cache a new epoch: every Redis and in-process entry written before is"
        " distrusted at once (run after any PostgreSQL restore; docs/runbooks/lease-cache-restore.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reason", required=True, help="why, e.g. 'PITR restore to 2026-12-01T04:00Z'")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token = cache_epoch.bump(options["reason"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"lease cache epoch is now {token[:8]}… (workers distrust older entries within seconds)")
