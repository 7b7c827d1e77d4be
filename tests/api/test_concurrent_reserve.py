"""Reserve-by-criteria from real threads against committed data: SKIP LOCKED picks disjoint
rows, nothing is reserved twice, every request is all-or-nothing, no 5xx (no deadlock)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from django.db import connections, transaction

from core.rls import rls_scope
from numbering.models import Number, Reservation
from tests.api.conftest import Api, make_token
from tests.factories import InventoryPoolFactory, NumberFactory, TenantFactory, TenantPoolFactory

T = "/api/tenant/v1"


def test_concurrent_reserve_by_criteria_never_double_reserves(committed: None) -> None:
    pool = InventoryPoolFactory()
    tenants = [TenantFactory(name=name) for name in ("Alice", "Bob", "Dora")]
    for tenant in tenants:
        TenantPoolFactory(tenant=tenant, inventory_pools=[pool], quota_msisdn=20)
    for _ in range(10):
        NumberFactory(pool=pool)
    requests = [(tenants[i % 3], 3) for i in range(8)]  # asks for 24 of 10 numbers
    barrier = threading.Barrier(len(requests))
    replies: list[tuple[Any, int, Any]] = []
    lock = threading.Lock()

    def reserve(tenant: Any, count: int) -> None:
        try:
            token = make_token("tenant.admin", tenant)
            barrier.wait(timeout=30)
            reply = Api().post(f"{T}/reservations/", token, {"count": count})
            with lock:
                replies.append((tenant, reply.status, reply.json))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reserve, args=r) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    statuses = Counter(status for _, status, _ in replies)
    assert set(statuses) <= {201, 409}, replies
    won = [(tenant, body) for tenant, status, body in replies if status == 201]
    assert all(body["count"] == 3 for _, body in won)
    assert all(body["code"] == "NOT_AVAILABLE" for _, status, body in replies if status == 409)
    handed_out = [r["number"]["number"] for _, body in won for r in body["results"]]
    assert len(handed_out) == len(set(handed_out)) == 3 * len(won)
    assert len(won) == 3  # 10 numbers: three batches of 3 fit, the fourth never half-happens
    with transaction.atomic(), rls_scope(platform=True):
        held = dict(Number.objects.filter(state="RESERVED").values_list("number", "tenant_id"))
        assert set(held) == set(handed_out)
        for tenant, body in won:
            assert all(held[r["number"]["number"]] == tenant.id for r in body["results"])
        active = Counter(Reservation.objects.filter(status="ACTIVE").values_list("number__number", flat=True))
        assert set(active.values()) == {1} and set(active) == set(handed_out)


def test_reserve_by_criteria_skips_rows_another_transaction_has_locked(committed: None) -> None:
    import psycopg

    from tests.conftest import owner_dsn

    pool = InventoryPoolFactory()
    alice = TenantFactory(name="Alice")
    TenantPoolFactory(tenant=alice, inventory_pools=[pool])
    first, second, third = sorted(NumberFactory(pool=pool).number for _ in range(3))
    with psycopg.connect(owner_dsn(), autocommit=False) as other, other.cursor() as cur:
        # Another transaction is busy with the first candidate (as a concurrent reserve would be).
        cur.execute("SELECT id FROM numbering_number WHERE number = %s FOR UPDATE", [first])
        reply = Api().post(f"{T}/reservations/", make_token("tenant.admin", alice), {"count": 2})
        assert reply.status == 201, reply.json
        assert sorted(r["number"]["number"] for r in reply.json["results"]) == [second, third]
        busy = Api().post(f"{T}/reservations/", make_token("tenant.admin", alice), {"count": 1})
        assert busy.status == 409 and busy.json["code"] == "NOT_AVAILABLE"  # only the locked row is left
        other.rollback()
    connections.close_all()


def test_two_concurrent_requests_with_one_idempotency_key_have_one_effect(committed: None) -> None:
    pool = InventoryPoolFactory()
    alice = TenantFactory(name="Alice")
    TenantPoolFactory(tenant=alice, inventory_pools=[pool])
    for _ in range(4):
        NumberFactory(pool=pool)
    token = make_token("tenant.admin", alice, sub="alice-bff")
    barrier = threading.Barrier(2)
    bodies: list[tuple[int, bytes]] = []

    def reserve() -> None:
        try:
            barrier.wait(timeout=30)
            reply = Api().post(f"{T}/reservations/", token, {"count": 2}, headers={"Idempotency-Key": "once"})
            bodies.append((reply.status, reply.body))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reserve) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [status for status, _ in bodies] == [201, 201]
    assert bodies[0][1] == bodies[1][1]
    with transaction.atomic(), rls_scope(platform=True):
        assert Number.objects.filter(state="RESERVED").count() == 2
