from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from pools.services import pool_watermarks_check


class Command(BaseCommand):
    help = "Pool watermarks: availability per pool; publishes numbering.pool.exhaustion.v1 once per level crossing."

    def handle(self, *args: Any, **options: Any) -> None:
        result = pool_watermarks_check()
        self.stdout.write(f"pool_watermarks: pools={result.pools}, crossings={len(result.crossings)}")
        for c in result.crossings:
            self.stdout.write(f"  {c['pool']}: {c['previous_level']} -> {c['level']} ({c['available']} available)")
