from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from contracts.imports.retention import purge_import_uploads


class Command(BaseCommand):
    help = (
        "Delete stored import uploads (CSV + signature) past INVENTORY_IMPORT_RETENTION_DAYS (committed) or "
        "INVENTORY_IMPORT_UNCOMMITTED_RETENTION_DAYS (all others); the import records are kept (ADR 1354)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = purge_import_uploads()
        self.stdout.write(f"purge_import_uploads: purged={result.purged} skipped={result.skipped}")
