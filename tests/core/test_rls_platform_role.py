"""Issue 13 item 6: RLS as a second line of defence (ADR 1352).

The attack: with SQL injection (or the credentials) of a tenant-scoped connection, run
`set_config('app.scope', 'platform', true)` and read every tenant's rows. Connected as the
restricted tenant role (numbering_tenant, no member of numbering_platform) that reveals
nothing more: the policies honour platform scope only for the platform group. RLS also
covers audit events, idempotency records and the outbox now. Raw psycopg, committed rows,
real PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.db import connections, transaction

from audit.services import audit_append
from core import clock
from core.models import IdempotencyRecord
from core.outbox import outbox_enqueue
from core.rls import rls_scope
from numbering.lifecycle import State
from tests.factories import NumberFactory, TenantFactory

TENANT_ROLE = "numbering_tenant"
TABLES = ["numbering_number", "audit_auditevent", "numbering_idempotencyrecord", "numbering_outboxevent"]


def _dsn(user: str) -> str:
    cfg = connections["owner"].settings_dict
    return f"host={cfg['HOST']} port={cfg['PORT']} dbname={cfg['NAME']} user={user}"


@pytest.fixture
def two_tenants(committed: None) -> Iterator[dict[str, Any]]:
    alice, bob = TenantFactory(), TenantFactory()
    NumberFactory(state=State.ASSIGNED, tenant=alice)
    NumberFactory(state=State.ASSIGNED, tenant=bob)
    NumberFactory(state=State.AVAILABLE)
    with transaction.atomic(), rls_scope(platform=True):
        for tenant in (alice, bob):
            audit_append(actor="test", action="t", object_type="t", object_id=str(tenant.id), tenant_id=tenant.id)
            outbox_enqueue(event_type="numbering.test.v1", aggregate_id=str(tenant.id), data={}, tenant_id=tenant.id)
            IdempotencyRecord.objects.create(
                scope=f"tenant:{tenant.id}:portal-user",
                key="k",
                request_hash="h",
                expires_at=clock.now() + timedelta(days=1),
            )
    yield {"alice": alice.id, "bob": bob.id}


def _counts(user: str, *, scope: str, tenant_id: uuid.UUID | None) -> dict[str, int]:
    with psycopg.connect(_dsn(user)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT set_config('app.scope', %s, true), set_config('app.tenant_id', %s, true)",
            [scope, str(tenant_id) if tenant_id else ""],
        )
        result = {}
        for table in TABLES:
            cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed table names
            result[table] = cur.fetchone()[0]
        cur.execute("SELECT current_user, pg_has_role(current_user, 'numbering_platform', 'MEMBER')")
        result["is_platform_member"] = int(cur.fetchone()[1])
        return result


def test_the_attack_tenant_role_setting_platform_scope_sees_no_other_tenant(two_tenants: dict[str, Any]) -> None:
    as_tenant = _counts(TENANT_ROLE, scope="tenant", tenant_id=two_tenants["alice"])
    # The injection: the tenant connection claims platform scope (keeping or dropping its tenant).
    forged = _counts(TENANT_ROLE, scope="platform", tenant_id=two_tenants["alice"])
    forged_bare = _counts(TENANT_ROLE, scope="platform", tenant_id=None)
    # Own number + the AVAILABLE one; its own audit event, idempotency record and outbox event
    # (numbering 0009: tenant requests run as this role and replay/append their own), none of bob's.
    expected = {
        "numbering_number": 2,
        "audit_auditevent": 1,
        "numbering_idempotencyrecord": 1,
        "numbering_outboxevent": 1,
        "is_platform_member": 0,
    }
    assert as_tenant == expected
    assert forged == expected
    assert forged_bare == {
        **expected,
        "numbering_number": 1,
        "audit_auditevent": 0,
        "numbering_idempotencyrecord": 0,
        "numbering_outboxevent": 0,
    }


def test_the_platform_role_still_sees_everything_in_platform_scope(two_tenants: dict[str, Any]) -> None:
    app_user = connections["default"].settings_dict["USER"]
    platform = _counts(app_user, scope="platform", tenant_id=None)
    assert platform == {
        "numbering_number": 3,
        "audit_auditevent": 2,
        "numbering_idempotencyrecord": 2,
        "numbering_outboxevent": 2,
        "is_platform_member": 1,
    }


def test_the_tenant_role_cannot_rewrite_audit_events_or_join_the_platform_group(two_tenants: dict[str, Any]) -> None:
    with psycopg.connect(_dsn(TENANT_ROLE)) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute("UPDATE audit_auditevent SET actor = 'x'")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute("SET ROLE numbering_platform")
