"""Deactivation under real concurrency (issue 16, ADR 1620): the row is locked before the
decision, so two staff users deactivating at once make one audit event and one outbox event,
and both get the deactivated row back."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from audit.models import AuditEvent
from core.actors import Actor
from core.models import OutboxEvent
from pools import services as pool_services
from pools.models import InventoryPool

pytestmark = pytest.mark.usefixtures("committed")


def test_two_concurrent_deactivations_make_one_event_and_both_succeed(general_pool: Any) -> None:

    barrier, results, failures = threading.Barrier(2), [], []

    def deactivate(name: str) -> None:
        try:
            barrier.wait()
            row = pool_services.inventory_pool_deactivate(
                pool=InventoryPool.objects.get(pk=general_pool.pk), actor=Actor.user(name, roles=frozenset())
            )
            results.append(row.deactivated_at)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deactivate, args=(n,)) for n in ("ops.a", "ops.b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert len(results) == 2 and results[0] == results[1] is not None
    assert AuditEvent.objects.filter(action="inventory_pool.deactivate").count() == 1
    assert OutboxEvent.objects.filter(event_type="numbering.inventory_pool.deactivated.v1").count() == 1
