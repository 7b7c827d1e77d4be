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
import pytest
from django.core.exceptions import ImproperlyConfigured

from core.actors import Actor
from core.authz import GRPC_DEFAULT_PERMISSIONS, GrpcGrant, grpc_grants, parse_grpc_permissions
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from numbering.lifecycle import State
from numbering.models import Number
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
