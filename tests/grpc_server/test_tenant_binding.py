"""Issue 13 item 1: a tenant-acting CN (customer-portal-bff) cannot act as the platform.

The attack: the BFF calls Release/Assign with no tenant_id, the acting tenant is then None,
the CAS holder guard is dropped and any tenant's live number goes to quarantine. Now every
mutation of a tenant-acting CN must name the tenant (INVALID_ARGUMENT naming tenant_id) and
runs as a service actor bound to that tenant, so the holder guard applies.
"""

from __future__ import annotations

import pickle
import uuid
from typing import Any

import grpc
import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from core.actors import Actor
from core.authz import GRPC_DEFAULT_PERMISSIONS, GrpcGrant, grpc_grants, parse_grpc_permissions
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from numbering.lifecycle import State
from numbering.models import Number
from numbering.services import skeleton
from tests.conftest import tenant_dsn
from tests.factories import NumberFactory
from tests.grpc_server.conftest import as_platform
from tests.grpc_server.test_rpcs import BFF, COMPLIANCE, error_of
from tests.numbering.helpers import number_in

TENANT_ID_REQUIRED = (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR", {"field": "tenant_id"})


def state_of(number: Number) -> str:
    return as_platform(lambda: Number.objects.get(id=number.id)).state


def test_portal_release_without_tenant_id_is_refused_and_the_number_stays_assigned(
    grpc_server: Any, connect: Any, alice: Any
) -> None:
    bff = connect(grpc_server, BFF)
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    assert error_of(bff.Release, pb.ReleaseRequest(number=n.number, reason="x")) == TENANT_ID_REQUIRED
    assert state_of(n) == State.ASSIGNED


def test_portal_assign_and_reserve_without_tenant_id_are_refused(grpc_server: Any, connect: Any, alice: Any) -> None:
    bff = connect(grpc_server, BFF)
    reserved = as_platform(lambda: number_in(State.RESERVED, alice))
    assert error_of(bff.Assign, pb.AssignRequest(number=reserved.number)) == TENANT_ID_REQUIRED
    assert state_of(reserved) == State.RESERVED
    free = NumberFactory()
    assert error_of(bff.Reserve, pb.ReserveRequest(number=free.number)) == TENANT_ID_REQUIRED
    assert state_of(free) == State.AVAILABLE
    code, _, metadata = error_of(bff.Release, pb.ReleaseRequest(number=reserved.number, tenant_id="nope"))
    assert (code, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, {"field": "tenant_id"})


def test_portal_naming_another_tenant_hits_the_holder_guard(
    grpc_server: Any, connect: Any, alice: Any, bob: Any
) -> None:
    bff = connect(grpc_server, BFF)
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    assert error_of(bff.Release, pb.ReleaseRequest(number=n.number, tenant_id=str(bob.id)))[:2] == (
        grpc.StatusCode.PERMISSION_DENIED,
        "WRONG_TENANT",
    )
    assert state_of(n) == State.ASSIGNED
    released = bff.Release(pb.ReleaseRequest(number=n.number, tenant_id=str(alice.id)))
    assert released.number.state == pb.QUARANTINED


def test_only_a_platform_cn_may_act_on_any_holders_number(start_server: Any, connect: Any, alice: Any) -> None:
    """The same call from a CN configured to act as the platform (the object form) works:
    the difference is the table's, not the certificate's."""
    table = parse_grpc_permissions(
        '{"customer-portal-bff": {"methods": ["Release"], "acts_as": "platform"},'
        ' "compliance-service": ["Lookup", "Recall"]}'
    )
    server = start_server(permissions=table)
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    released = connect(server, BFF).Release(pb.ReleaseRequest(number=n.number, reason="ops"))
    assert released.number.state == pb.QUARANTINED
    m = as_platform(lambda: number_in(State.ASSIGNED, alice))
    assert connect(server, COMPLIANCE).Recall(pb.RecallRequest(number=m.number)).number.state == pb.QUARANTINED


# --- the table ----------------------------------------------------------------------------


def test_default_table_says_how_each_cn_acts() -> None:
    assert GRPC_DEFAULT_PERMISSIONS[BFF].acts_for_tenant
    assert GRPC_DEFAULT_PERMISSIONS[BFF] == {"Lookup", "Reserve", "ExtendReservation", "Assign", "Release"}
    assert not GRPC_DEFAULT_PERMISSIONS[COMPLIANCE].acts_for_tenant
    assert not any(g.acts_for_tenant for cn, g in GRPC_DEFAULT_PERMISSIONS.items() if cn != BFF)


def test_list_form_keeps_the_default_mode_and_fails_closed_for_new_cns() -> None:
    table = parse_grpc_permissions(
        '{"customer-portal-bff": ["Reserve"], "compliance-service": ["Recall"], "new-portal": ["Release"]}'
    )
    assert table[BFF].acts_for_tenant and not table[COMPLIANCE].acts_for_tenant
    assert table["new-portal"].acts_for_tenant  # unknown CN: acts for a tenant unless told otherwise
    assert grpc_grants({BFF: frozenset({"Reserve"})})[BFF].acts_for_tenant  # bare sets too


def test_object_form_and_its_refusals() -> None:
    table = parse_grpc_permissions('{"ops-console": {"methods": ["Release", "Recall"], "acts_as": "platform"}}')
    assert table["ops-console"] == {"Release", "Recall"} and table["ops-console"].acts_as == "platform"
    assert pickle.loads(pickle.dumps(table["ops-console"])).acts_as == "platform"  # noqa: S301 - our own bytes
    assert "acts_as='platform'" in repr(table["ops-console"])
    for raw, message in [
        ('{"x": {"methods": ["Lookup"], "acts_as": "god"}}', 'must be "tenant" or "platform"'),
        ('{"x": {"methods": ["Lookup"]}}', '"acts_as"'),
        ('{"x": {"methods": ["Lookup"], "acts_as": "tenant", "extra": 1}}', "unknown key(s) ['extra']"),
        ('{"x": {"methods": "Lookup", "acts_as": "tenant"}}', "list of method names"),
        ('{"x": {"methods": ["Recall"], "acts_as": "tenant"}}', "only a platform caller may call"),
        ('{"new-portal": ["Recall"]}', "only a platform caller may call"),
    ]:
        with pytest.raises(ImproperlyConfigured, match="GRPC_CLIENT_PERMISSIONS") as raised:
            parse_grpc_permissions(raw)
        assert message in str(raised.value)
    assert isinstance(GRPC_DEFAULT_PERMISSIONS[BFF], GrpcGrant)


def test_a_service_bound_to_a_tenant_is_scoped_by_it() -> None:
    tenant = uuid.uuid4()
    actor = Actor.service(BFF, tenant_id=tenant)
    assert actor.acts_for_tenant and not actor.is_tenant
    assert actor.identity == f"service:{BFF}:tenant:{tenant}"
    assert Actor.service(COMPLIANCE).identity == f"service:{COMPLIANCE}"
    with pytest.raises(ValueError, match="does not act for a tenant"):
        Actor(Actor.system().kind, "job", tenant_id=tenant)


# --- issue 13 item 6: the BFF's mutations run as the tenant role (ADR 1352) ----------------

INJECTION = (
    "SELECT current_user, set_config('app.scope', 'platform', false),"
    " (SELECT count(*) FROM numbering_number WHERE tenant_id = %s),"
    " (SELECT count(*) FROM numbering_outboxevent WHERE envelope->>'tenant_id' = %s)"
)


def _inject_into_mutations(monkeypatch: pytest.MonkeyPatch, bob: Any) -> list[tuple[Any, ...]]:
    """An 'SQL injection' inside the mutation's own query path, on the server's DB thread."""
    seen: list[tuple[Any, ...]] = []
    original = skeleton.load

    def injected(number: str) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(INJECTION, [bob.id, str(bob.id)])
            seen.append(cursor.fetchone())
        return original(number)

    monkeypatch.setattr(skeleton, "load", injected)
    return seen


def test_the_attack_an_injection_in_a_portal_mutation_cannot_widen_to_platform_scope(
    grpc_server: Any, connect: Any, alice: Any, bob: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bff = connect(grpc_server, BFF)
    as_platform(lambda: [number_in(State.ASSIGNED, bob) for _ in range(3)])
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    seen = _inject_into_mutations(monkeypatch, bob)
    released = bff.Release(pb.ReleaseRequest(number=n.number, tenant_id=str(alice.id), idempotency_key="inj-1"))
    assert released.number.state == pb.QUARANTINED  # the mutation itself works on the tenant role
    user, _, bobs_numbers, bobs_events = seen[0]
    assert user == "numbering_tenant"
    assert (bobs_numbers, bobs_events) == (0, 0)


def test_without_the_tenant_role_the_same_injection_sees_other_tenants(
    grpc_server: Any, connect: Any, alice: Any, bob: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """The control, so that the test above can fail: on the app role (a platform-group
    member) the injected platform scope reads bob's rows."""
    settings.TENANT_REQUESTS_ON_TENANT_ROLE = False
    bff = connect(grpc_server, BFF)
    as_platform(lambda: [number_in(State.ASSIGNED, bob) for _ in range(3)])
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    seen = _inject_into_mutations(monkeypatch, bob)
    bff.Release(pb.ReleaseRequest(number=n.number, tenant_id=str(alice.id), idempotency_key="inj-2"))
    user, _, bobs_numbers, _ = seen[0]
    assert user == "numbering_app"
    assert bobs_numbers == 3


def test_another_tenants_number_is_refused_as_the_contract_says_not_as_not_found(
    grpc_server: Any, connect: Any, alice: Any, bob: Any
) -> None:
    """The tenant scope hides alice's held numbers from a call acting for bob; the refusal
    is still classified from the number's state (numbering_hidden_number_facts)."""
    bff = connect(grpc_server, BFF)
    assigned = as_platform(lambda: number_in(State.ASSIGNED, alice))
    reserved = as_platform(lambda: number_in(State.RESERVED, alice))
    quarantined = as_platform(lambda: number_in(State.QUARANTINED, alice))
    for_bob = str(bob.id)
    wrong_tenant = (grpc.StatusCode.PERMISSION_DENIED, "WRONG_TENANT")
    assert error_of(bff.Release, pb.ReleaseRequest(number=assigned.number, tenant_id=for_bob))[:2] == wrong_tenant
    assert error_of(bff.Assign, pb.AssignRequest(number=reserved.number, tenant_id=for_bob))[:2] == wrong_tenant
    extend = pb.ExtendReservationRequest(number=reserved.number, tenant_id=for_bob, ttl_seconds=60)
    assert error_of(bff.ExtendReservation, extend)[:2] == wrong_tenant
    taken = error_of(bff.Reserve, pb.ReserveRequest(number=assigned.number, tenant_id=for_bob))
    assert taken[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert error_of(bff.Reserve, pb.ReserveRequest(number=quarantined.number, tenant_id=for_bob))[0] == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    stale = pb.ReleaseRequest(number=assigned.number, tenant_id=for_bob, expected_version=99)
    assert error_of(bff.Release, stale)[:2] == (grpc.StatusCode.ABORTED, "CONFLICT")
    unknown = error_of(bff.Release, pb.ReleaseRequest(number="+93799999901", tenant_id=for_bob))
    assert unknown[:2] == (grpc.StatusCode.NOT_FOUND, "NUMBER_NOT_FOUND")
    assert (state_of(assigned), state_of(reserved)) == (State.ASSIGNED, State.RESERVED)


@pytest.mark.usefixtures("committed")
def test_the_hidden_number_function_tells_state_and_version_only_and_only_to_our_roles(alice: Any) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    with psycopg.connect(tenant_dsn()) as conn:
        conn.execute("SELECT set_config('app.scope', 'tenant', false), set_config('app.tenant_id', %s, false)",
                     [str(uuid.uuid4())])  # fmt: skip
        visible = conn.execute("SELECT count(*) FROM numbering_number WHERE id = %s", [n.id]).fetchone()
        facts = conn.execute("SELECT * FROM numbering_hidden_number_facts(%s)", [n.number]).fetchall()
        columns = [
            c.name for c in conn.execute("SELECT * FROM numbering_hidden_number_facts(%s)", [n.number]).description
        ]
        acl = conn.execute(
            "SELECT proacl::text, provolatile FROM pg_proc WHERE proname = 'numbering_hidden_number_facts'"
        ).fetchone()
    assert acl[1] == "v"  # it sets app.scope for its own duration: VOLATILE (0014)
    assert visible == (0,)  # the tenant scope hides it...
    assert facts == [("ASSIGNED", n.version)] and columns == ["state", "version"]  # ...and this tells only that
    grantees = [item.split("=")[0] for item in acl[0].strip("{}").split(",")]
    assert "" not in grantees  # not executable by PUBLIC (an empty grantee)
    assert "numbering_tenant" in grantees and "numbering_platform" in grantees
