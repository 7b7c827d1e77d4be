"""Issue 13 item 6 (ADR 1352): tenant-scoped requests run as the restricted database role
`numbering_tenant`, which is not in `numbering_platform`, so an SQL injection inside a tenant
request that sets `app.scope = 'platform'` still sees only that tenant's rows.

Committed data (`committed`): the tenant role's connection is another session and cannot
see a test transaction's uncommitted rows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection, connections, transaction

from audit.models import AuditEvent
from core import tenant_db
from core.models import IdempotencyRecord, OutboxEvent
from core.rls import rls_scope
from numbering import selectors
from numbering.apis import tenant as tenant_api
from numbering.lifecycle import State
from numbering.models import Number
from tests.api.conftest import Api, make_token
from tests.numbering.helpers import number_in

T = "/api/tenant/v1"
INJECTION = (
    "SELECT current_user, set_config('app.scope', 'platform', false),"
    " (SELECT count(*) FROM numbering_number), (SELECT count(*) FROM numbering_number WHERE tenant_id = %s),"
    " (SELECT count(*) FROM audit_auditevent WHERE tenant_id IS DISTINCT FROM %s),"
    " (SELECT count(*) FROM numbering_outboxevent WHERE envelope->>'tenant_id' IS DISTINCT FROM %s),"
    " (SELECT count(*) FROM numbering_idempotencyrecord)"
)


@pytest.fixture
def on_tenant_role(settings: Any) -> None:
    assert "tenant" in settings.DATABASES, "DATABASE_TENANT_URL / the tenant alias is configured"
    settings.TENANT_REQUESTS_ON_TENANT_ROLE = True


@pytest.fixture
def holdings(committed: None, alice: Any, bob: Any) -> dict[str, list[Number]]:
    with transaction.atomic(), rls_scope(platform=True):
        return {
            "alice": [number_in(State.ASSIGNED, alice), number_in(State.RESERVED, alice)],
            "bob": [number_in(State.ASSIGNED, bob) for _ in range(3)],
            "available": [number_in(State.AVAILABLE, None) for _ in range(2)],
        }


def _injected_list(monkeypatch: pytest.MonkeyPatch, alice: Any, bob: Any) -> dict[str, Any]:
    """GET my numbers, with an 'injection' inside the request's own query path."""
    seen: dict[str, Any] = {}
    original: Callable[..., Any] = selectors.number_held_by_tenant

    def injected(*, tenant_id: Any) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(INJECTION, [bob.id, alice.id, str(alice.id)])
            row = cursor.fetchone()
        seen.update(
            zip(("user", "_", "numbers", "bobs", "others_audit", "others_outbox", "idempotency"), row, strict=True)
        )
        return original(tenant_id=tenant_id)

    monkeypatch.setattr(selectors, "number_held_by_tenant", injected)
    reply = Api().get(f"{T}/numbers/", make_token("tenant.admin", alice))
    assert reply.status == 200, reply.json
    seen["listed"] = sorted(n["number"] for n in reply.json["results"])
    return seen


def test_the_attack_an_injection_in_a_tenant_request_cannot_widen_to_platform_scope(
    on_tenant_role: None, holdings: dict[str, list[Number]], alice: Any, bob: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _injected_list(monkeypatch, alice, bob)
    assert seen["user"] == "numbering_tenant"
    assert seen["numbers"] == 4  # alice's two + the two AVAILABLE; none of bob's three
    assert seen["bobs"] == 0
    # Other tenants' (and tenant-less) audit events and outbox events stay invisible.
    assert seen["others_audit"] == 0 and seen["others_outbox"] == 0
    assert seen["listed"] == sorted(n.number for n in holdings["alice"])


def test_without_the_tenant_role_the_same_injection_sees_every_tenant(
    settings: Any, holdings: dict[str, list[Number]], alice: Any, bob: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the app role (a platform-group member) would have leaked bob's rows —
    so the test above can fail."""
    settings.TENANT_REQUESTS_ON_TENANT_ROLE = False
    seen = _injected_list(monkeypatch, alice, bob)
    assert seen["user"] == "numbering_app"
    assert seen["bobs"] == 3 and seen["numbers"] == 7
    assert seen["others_outbox"] >= 3  # bob's events


def test_tenant_mutations_work_on_the_tenant_role_audit_outbox_and_idempotent_replay(
    on_tenant_role: None, holdings: dict[str, list[Number]], alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    users: list[str] = []
    page = tenant_api._AVAILABLE_PAGE
    original = page.rows

    def spy(**kwargs: Any) -> Any:  # the search page runs its (compiled) SQL here
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            users.append(cursor.fetchone()[0])
        return original(**kwargs)

    monkeypatch.setattr(page, "rows", spy)
    api, tok = Api(), make_token("tenant.admin", alice, sub="alice-admin")
    assert api.get(f"{T}/numbers/available/", tok).status == 200
    assert users == ["numbering_tenant"]

    key = {"Idempotency-Key": "tenant-role-1"}
    first = api.post(f"{T}/reservations/", tok, {"count": 1}, headers=key)
    assert first.status == 201, first.json
    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # the replay must come from PostgreSQL
    again = api.post(f"{T}/reservations/", tok, {"count": 1}, headers=key)
    assert (again.status, again.body, again.headers.get("Idempotent-Replayed")) == (201, first.body, "true")
    number = first.json["results"][0]["number"]["number"]

    assigned = api.post(f"{T}/numbers/{number}/assign/", tok, {"lease_days": 30})
    assert assigned.status == 200, assigned.json
    released = api.post(f"{T}/numbers/{number}/release/", tok, {"reason": "no longer needed"})
    assert released.status == 200, released.json
    assert released.json["number"]["state"] == "QUARANTINED"

    # Every other tenant endpoint family answers on the tenant role too.
    leases = api.get(f"{T}/leases/", tok)
    assert leases.status == 200 and leases.json["results"], leases.json
    lease_id = next(lease["id"] for lease in leases.json["results"] if lease["status"] == "ACTIVE")
    assert api.get(f"{T}/leases/{lease_id}/", tok).status == 200
    renew = api.post(f"{T}/leases/{lease_id}/auto-renew/", tok, {"auto_renew": False})
    assert renew.status == 200, renew.json
    pool = api.get(f"{T}/pool/", tok)
    assert pool.status == 200 and pool.json["tenant_id"] == str(alice.id), pool.json
    second = api.post(f"{T}/reservations/", tok, {"count": 1})
    assert second.status == 201, second.json
    listed = api.get(f"{T}/reservations/", tok)
    assert listed.status == 200 and listed.json["results"], listed.json
    cancelled = api.post(f"{T}/reservations/{listed.json['results'][0]['id']}/cancel/", tok)
    assert cancelled.status == 200, cancelled.json
    assert api.get(f"{T}/numbers/{holdings['bob'][0].number}/", tok).status == 404  # BOLA still 404

    with transaction.atomic(), rls_scope(platform=True):
        assert IdempotencyRecord.objects.filter(scope__startswith=f"tenant:{alice.id}:").count() == 1
        events = OutboxEvent.objects.filter(aggregate_id=number).count()
        audits = AuditEvent.objects.filter(tenant_id=alice.id).count()
    assert events >= 3 and audits >= 3


def test_the_switch_never_splits_a_transaction(db: None, on_tenant_role: None) -> None:
    with pytest.raises(RuntimeError, match="outside any transaction"):
        with transaction.atomic(), tenant_db.tenant_role():
            pass


@pytest.mark.usefixtures("committed")
def test_other_paths_stay_on_the_app_role(on_tenant_role: None) -> None:
    reply = Api().get("/api/admin/v1/numbers/", make_token("numbering.admin"))
    assert reply.status == 200, reply.json
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == "numbering_app"


def test_a_thread_holds_one_connection_whichever_role_its_units_run_on(on_tenant_role: None, committed: None) -> None:
    """ADR 1503 budgets one connection per thread: switching roles closes the other one."""

    def current_user() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            return str(cursor.fetchone()[0])

    def open_aliases() -> set[str]:
        # During tenant_role() "default" is the tenant connection itself: name each by its own alias.
        return {connections[a].alias for a in ("default", "tenant") if connections[a].connection is not None}

    def units() -> list[tuple[str, set[str]]]:
        seen = []
        for _ in range(2):
            with tenant_db.tenant_role():
                seen.append((current_user(), open_aliases()))
            seen.append(("(after)", open_aliases()))
            tenant_db.platform_role()
            seen.append((current_user(), open_aliases()))
        connections.close_all()
        return seen

    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.extend(units()))  # a fresh thread: its own connections
    worker.start()
    worker.join(30)
    assert result == [
        ("numbering_tenant", {"tenant"}),
        ("(after)", {"tenant"}),  # kept while the thread serves tenants
        ("numbering_app", {"default"}),
        ("numbering_tenant", {"tenant"}),
        ("(after)", {"tenant"}),
        ("numbering_app", {"default"}),
    ]
