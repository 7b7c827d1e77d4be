"""Jobs run twice at once (real commits, real threads) do the work once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from django.db import connection, transaction

from core.rls import rls_scope
from numbering import jobs
from numbering.lifecycle import State
from tests.jobs.test_sweeps import _lease, _lease_ends_in
from tests.numbering.helpers import number_in


def test_two_renewal_runs_at_once_renew_each_lease_once(committed: Any, alice: Any) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        numbers = [number_in(State.ASSIGNED, alice) for _ in range(4)]
        for n in numbers:
            _lease_ends_in(n, timedelta(days=2))
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(jobs.leases_auto_renew(window_days=7))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with transaction.atomic(), rls_scope(platform=True):
        assert [_lease(n).renewals for n in numbers] == [1, 1, 1, 1]
    assert sum(r.count("renewed") for r in results) == 4
