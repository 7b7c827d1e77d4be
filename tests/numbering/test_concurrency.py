"""Real concurrency against real PostgreSQL: threads, each with its own connection."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from audit.models import AuditEvent
from core import errors
from core.actors import Actor
from core.models import OutboxEvent
from core.rls import rls_scope
from numbering import services
from numbering.models import Number, Reservation
from tests.conftest import as_tenant
from tests.factories import NumberFactory, TenantFactory, TenantPoolFactory

pytestmark = pytest.mark.usefixtures("committed")


def run_concurrently(count: int, task: Callable[[int], Any]) -> list[Any]:
    """Start `count` threads that wait on a barrier, then all call task(i) at once."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[i] = task(i)
        except BaseException as exc:  # noqa: BLE001 - the outcome is the result
            results[i] = exc
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def platform_read(fn: Callable[[], Any]) -> Any:
    with transaction.atomic(), rls_scope(platform=True):
        return fn()


# A tenant that lost the race no longer sees the number (RLS: another tenant holds it),
# so it is told NUMBER_NOT_FOUND; a platform service acting for tenants sees why.
@pytest.mark.parametrize(
    ("acting", "refusal"),
    [("tenant", "NumberNotFoundError"), ("service", "InvalidTransitionError")],
)
def test_100_concurrent_reserves_of_one_number_exactly_one_wins(general_pool: Any, acting: str, refusal: str) -> None:
    number = NumberFactory(pool=general_pool)
    tenants = []
    for i in range(100):
        tenant = TenantFactory(name=f"Racer {i}")
        TenantPoolFactory(tenant=tenant, inventory_pools=[general_pool])
        tenants.append(tenant)

    def actor(i: int) -> Actor:
        return as_tenant(tenants[i]) if acting == "tenant" else Actor.service("customer-portal-bff")

    results = run_concurrently(
        100, lambda i: services.number_reserve(number=number.number, tenant_id=tenants[i].id, actor=actor(i))
    )

    winners = [r for r in results if isinstance(r, services.MutationResult)]
    refusals = Counter(type(r).__name__ for r in results if not isinstance(r, services.MutationResult))
    assert len(winners) == 1, refusals
    assert all(isinstance(r, (services.MutationResult, errors.DomainError)) for r in results), refusals
    assert sum(refusals.values()) == 99
    assert set(refusals) <= {refusal, "NotAvailableError"}
    row = platform_read(lambda: Number.objects.get(id=number.id))
    assert row.state == "RESERVED" and str(row.tenant_id) == winners[0].number["tenant_id"]
    assert row.version == 2
    assert platform_read(lambda: Reservation.objects.filter(number=number).count()) == 1
    assert platform_read(lambda: AuditEvent.objects.filter(object_id=number.number).count()) == 1
    assert platform_read(lambda: OutboxEvent.objects.filter(aggregate_id=number.number).count()) == 1


def test_concurrent_duplicates_with_one_idempotency_key_produce_one_effect(alice: Any) -> None:
    number = NumberFactory()
    actor = as_tenant(alice)

    results = run_concurrently(
        8,
        lambda i: services.number_reserve(
            number=number.number, tenant_id=alice.id, actor=actor, idempotency_key="dup-1"
        ),
    )

    assert all(isinstance(r, services.MutationResult) for r in results), results
    assert sum(1 for r in results if not r.replayed) == 1
    assert len({r.to_dict()["reservation"]["reservation_id"] for r in results}) == 1
    assert platform_read(lambda: Reservation.objects.filter(number=number).count()) == 1
    assert platform_read(lambda: AuditEvent.objects.filter(object_id=number.number).count()) == 1


def test_quota_holds_under_concurrent_reserves_by_one_tenant(general_pool: Any) -> None:
    tenant = TenantFactory()
    TenantPoolFactory(tenant=tenant, inventory_pools=[general_pool], quota_msisdn=3)
    numbers = [NumberFactory(pool=general_pool) for _ in range(10)]

    results = run_concurrently(
        10, lambda i: services.number_reserve(number=numbers[i].number, tenant_id=tenant.id, actor=as_tenant(tenant))
    )

    assert sum(isinstance(r, services.MutationResult) for r in results) == 3
    assert all(isinstance(r, errors.QuotaExceeded) for r in results if not isinstance(r, services.MutationResult))
    assert platform_read(lambda: Number.objects.filter(tenant_id=tenant.id).count()) == 3


def test_a_change_between_the_read_and_the_cas_is_read_again_and_audited_as_replaced(
    alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14's audit notes: a row that changed after our read but kept its state (A→B→A,
    a renewal) used to pass the CAS, and the audit event's `before` was the stale read. The
    CAS now also matches the version we read: it loses, reads again, and `before` is the row
    the change replaced."""
    from numbering import cas
    from numbering.lifecycle import State
    from tests.conftest import owner_dsn
    from tests.numbering.helpers import number_in

    n = platform_read(lambda: number_in(State.ASSIGNED, alice))
    original = cas.compare_and_set
    raced: list[int] = []

    def racing(**kwargs: Any) -> Any:
        if not raced:  # another session commits a same-state change in between
            import psycopg

            with psycopg.connect(owner_dsn(), autocommit=True) as other:
                other.execute("SELECT set_config('app.scope', 'platform', false)")
                other.execute("UPDATE numbering_number SET version = version + 1 WHERE id = %s", [n.id])
            raced.append(kwargs["expected_version"])
        return original(**kwargs)

    monkeypatch.setattr(cas, "compare_and_set", racing)
    result = services.number_release(number=n.number, actor=as_tenant(alice))
    assert raced == [n.version]
    assert result.number["state"] == "QUARANTINED" and result.number["version"] == n.version + 2
    event = platform_read(lambda: AuditEvent.objects.get(object_id=n.number, action__icontains="release"))
    assert event.before["version"] == n.version + 1  # the replaced row, not the first read
