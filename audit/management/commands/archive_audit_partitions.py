from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.archive import ArchiveError, archive_audit_partitions
from core.worm import StorageError


class Command(BaseCommand):
    help = (
        "Archive audit partitions older than AUDIT_HOT_MONTHS to WORM storage as signed, hash-linked"
        " segments, verify them, then drop them. Idempotent; finishes a run interrupted before the drop."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = archive_audit_partitions()
        except (ArchiveError, StorageError) as exc:
            raise CommandError(f"audit archive failed: {exc}", returncode=1) from exc
        if result.skipped_locked:
            self.stdout.write("another archive run holds the lock; nothing done")
            return
        for name in result.recovered:
            self.stdout.write(f"finished interrupted archive of {name} (verified, dropped)")
        for name in result.archived:
            self.stdout.write(f"archived {name} (uploaded, verified, dropped)")
        if not result.archived and not result.recovered:
            self.stdout.write("no audit partition is due for archiving")
