from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_verify_chains


class Command(BaseCommand):
    help = "Recompute every audit hash chain; exit 0 when clean, 1 naming the first break."

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_verify_chains()
        if result.ok:
            self.stdout.write(f"audit chain OK: {result.verified} events verified in {result.chains} chain(s)")
            return
        first = result.breaks[0]
        for b in result.breaks:
            self.stderr.write(f"audit chain BROKEN: chain {b.chain} at seq {b.seq}: {b.reason}")
        raise CommandError(
            f"audit chain broken: first break in chain {first.chain} at seq {first.seq} "
            f"({result.verified} events verified before it)",
            returncode=1,
        )
