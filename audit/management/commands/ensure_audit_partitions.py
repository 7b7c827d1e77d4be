from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit.partitions import ensure_audit_partitions


class Command(BaseCommand):
    help = "Create this month's audit partition and AUDIT_PARTITIONS_AHEAD more (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--ahead", type=int, default=None, help="months ahead (default AUDIT_PARTITIONS_AHEAD)")

    def handle(self, *args: Any, **options: Any) -> None:
        created = ensure_audit_partitions(ahead=options["ahead"])
        self.stdout.write(f"audit partitions created: {', '.join(created) if created else 'none (all present)'}")
