from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.worm import StorageError, provision_bucket


class Command(BaseCommand):
    help = "Create the export bucket with versioning + Object Lock (default COMPLIANCE, N years). Idempotent."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bucket", default=None, help="default: EXPORT_BUCKET")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = provision_bucket(options["bucket"])
        except StorageError as exc:
            raise CommandError(str(exc), returncode=1) from exc
        except Exception as exc:  # noqa: BLE001 - unreachable endpoint, bad credentials: say where
            raise CommandError(
                f"could not provision bucket at S3_ENDPOINT_URL={settings.S3_ENDPOINT_URL or '(AWS)'}: {exc}",
                returncode=1,
            ) from exc
        what = (
            "created"
            if result.created
            else ("updated: " + ", ".join(result.changed) if result.changed else "unchanged")
        )
        self.stdout.write(
            f"bucket {result.bucket} {what} (versioning on, Object Lock COMPLIANCE "
            f"{settings.EXPORT_RETENTION_YEARS} years by default)"
        )
