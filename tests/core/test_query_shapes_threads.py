"""core/query_shapes.py under real threads on committed rows (a module of its own: the
shapes tests of test_query_shapes.py run inside one test transaction)."""

from __future__ import annotations

import threading

from django.db import connection, transaction
from django.db.models import Q

from core.query_shapes import QueryShapes
from core.rls import rls_scope
from tests.core.test_query_shapes import Counted
from tests.factories import ShortCodeFactory


def test_threads_share_one_cache_and_get_their_own_rows(committed: None) -> None:
    """Web threads compile and read the same shapes at once; each gets the rows of its values."""
    inventory = [ShortCodeFactory(vanity=True, vanity_tier=tier) for tier in ("GOLD", "GOLD", "SILVER")]
    inventory.append(ShortCodeFactory(vanity=False))
    shapes = QueryShapes(Counted())
    wanted = {tier: sorted(n.number for n in inventory if n.vanity_tier == tier) for tier in ("GOLD", "SILVER", "NONE")}
    failures: list[str] = []
    barrier = threading.Barrier(6)

    def search(tier: str) -> None:
        try:
            barrier.wait()
            for _ in range(20):
                with transaction.atomic(), rls_scope(platform=True):
                    got = [r["number"] for r in shapes.rows(criteria=Q(vanity_tier=tier), after=None, limit=50)]
                if got != wanted[tier]:
                    failures.append(f"{tier}: {got}")
        finally:
            connection.close()

    threads = [threading.Thread(target=search, args=(tier,)) for tier in ("GOLD", "SILVER", "NONE") * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert shapes.compiled_shapes() == 1
