"""The statement budget of every lifecycle action (issue 11 item 2, ADR 1100).

Each mutation's SQL round trips are pinned exactly, so they cannot silently grow back: a
change that adds a statement must change the number here (and the ADR's table) on purpose.
Measured with real commits (`committed`), i.e. the way the gRPC and REST callers run an
action: outside any transaction, so the RLS scope is one set_config and needs no restore.

With an idempotency key (the budget ≤ 8 of issue 11):
  1 RLS scope (set_config) · 2 idempotency claim (one upsert) · 3 load (number + issuer code
  + active lease/reservation) · 4 the action's one read (entitlement + quota + pool lock,
  or the quarantine policy, or the tenant pool) · 5 CAS UPDATE … RETURNING with the side
  rows as CTEs · 6 audit chain head lock · 7 audit event + head update + outbox row +
  pg_notify + stored response, one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import GENESIS_HASH
from audit.services import audit_verify_chains
from core import redis_client
from core.actors import Actor
from numbering import services
from tests.conftest import as_tenant
from tests.factories import NumberFactory

pytestmark = pytest.mark.usefixtures("committed")

OPS = Actor.user("ops.olga", roles=frozenset({"commerce.ops"}))


@pytest.fixture(autouse=True)
def chain_heads(committed: None) -> None:
    """Every audit chain has its head, as in any database past its first events (a chain's
    first event costs two statements more, once)."""
    with connection.cursor() as cursor:
        for chain in range(settings.AUDIT_CHAINS):
            cursor.execute(
                "INSERT INTO audit_chainhead (chain, seq, hash, updated_at) VALUES (%s, 0, %s, now())"
                " ON CONFLICT (chain) DO NOTHING",
                [chain, GENESIS_HASH],
            )


def statements(call: Callable[[], Any]) -> list[str]:
    """The statements the action's one transaction sent, BEGIN and COMMIT not counted (what
    runs after commit goes to Redis; the cache epoch is read once per process)."""
    with CaptureQueriesContext(connection) as captured:
        call()
    sql = [q["sql"] for q in captured.captured_queries]
    assert sql.count("BEGIN") == 1 and sql.count("COMMIT") == 1, sql
    return sql[sql.index("BEGIN") + 1 : sql.index("COMMIT")]


def key() -> str:
    return uuid.uuid4().hex


def assert_budget(sql: list[str], expected: int) -> None:
    assert len(sql) == expected, "\n".join(sql)


@pytest.mark.parametrize("with_key", [True, False])
def test_reserve_assign_release_each_take_their_budget(alice: Any, with_key: bool) -> None:
    number = NumberFactory().number
    actor = as_tenant(alice)
    k = key if with_key else (lambda: None)
    claim = 1 if with_key else 0

    reserve = statements(
        lambda: services.number_reserve(number=number, tenant_id=alice.id, actor=actor, idempotency_key=k())
    )
    assign = statements(
        lambda: services.number_assign(number=number, tenant_id=alice.id, actor=actor, idempotency_key=k())
    )
    release = statements(
        lambda: services.number_release(number=number, tenant_id=alice.id, actor=actor, idempotency_key=k())
    )

    assert_budget(reserve, 7 + claim)  # + the quota count, after the pool lock
    assert_budget(assign, 6 + claim)
    assert_budget(release, 6 + claim)  # ASSIGNED → QUARANTINED reads the quarantine policy
    assert audit_verify_chains().ok


def test_extend_renew_and_recall_take_their_budget(alice: Any) -> None:
    number = NumberFactory().number
    actor = as_tenant(alice)
    services.number_reserve(number=number, tenant_id=alice.id, actor=actor)

    extend = statements(
        lambda: services.number_extend_reservation(
            number=number, tenant_id=alice.id, actor=actor, ttl_seconds=3600, idempotency_key=key()
        )
    )
    services.number_assign(number=number, tenant_id=alice.id, actor=actor)
    renew = statements(
        lambda: services.number_renew(number=number, tenant_id=alice.id, actor=actor, idempotency_key=key())
    )
    recall = statements(lambda: services.number_recall(number=number, actor=OPS, reason="FRAUD", idempotency_key=key()))

    # An explicit deadline needs no pool read (ADR 1640): one fewer than the admin's clamp.
    assert_budget(extend, 6)
    assert_budget(renew, 7)
    assert_budget(recall, 7)
    assert audit_verify_chains().ok


def test_release_of_a_reservation_needs_no_policy_read(alice: Any) -> None:
    number = NumberFactory().number
    actor = as_tenant(alice)
    services.number_reserve(number=number, tenant_id=alice.id, actor=actor)

    release = statements(
        lambda: services.number_release(number=number, tenant_id=alice.id, actor=actor, idempotency_key=key())
    )

    assert_budget(release, 6)  # RESERVED → AVAILABLE: no cool-off to look up


def test_a_replay_costs_at_most_the_claim(alice: Any) -> None:
    number = NumberFactory().number
    actor = as_tenant(alice)
    k = key()
    first = services.number_reserve(number=number, tenant_id=alice.id, actor=actor, idempotency_key=k)

    from_redis = statements(
        lambda: services.number_reserve(number=number, tenant_id=alice.id, actor=actor, idempotency_key=k)
    )
    redis_client.client().delete(redis_client.idempotency_key(actor.identity, k))
    from_postgres = statements(
        lambda: services.number_reserve(number=number, tenant_id=alice.id, actor=actor, idempotency_key=k)
    )

    assert_budget(from_redis, 1)  # the RLS scope only; Redis answers
    assert_budget(from_postgres, 3)  # scope, claim (conflict), read the stored response
    again = services.number_reserve(number=number, tenant_id=alice.id, actor=actor, idempotency_key=k)
    assert again.replayed and again.to_dict() == first.to_dict()
