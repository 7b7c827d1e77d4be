from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core import idempotency


class Command(BaseCommand):
    help = "Delete idempotency records older than IDEMPOTENCY_TTL_SECONDS (keys may then be reused)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"purge_idempotency_records: deleted={idempotency.purge_expired()}")
