"""Issue 13 item 8: tenants do not pick their own terms.

The attacks: a tenant releases with `reason: TENANT_DELETED` and so chooses the 365-day
compliance quarantine; a tenant assigns with `lease_days: 3650` and so chooses its own term.
"""

from __future__ import annotations

from typing import Any

import pytest

from core import errors
from core.actors import Actor
from numbering import services
from numbering.lifecycle import State
from numbering.models import Lease, Number
from pools.models import TenantPool
from tests.conftest import as_tenant
from tests.numbering.helpers import OPS, number_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("reason", ["TENANT_DELETED", "COMPLIANCE_SUSPENSION", "fraud", " Tenant_Suspended "])
def test_a_tenant_may_not_give_a_compliance_reason(alice: Any, reason: str) -> None:
    number = number_in(State.ASSIGNED, alice)
    with pytest.raises(errors.ValidationError) as raised:
        services.number_release(number=number.number, actor=as_tenant(alice), reason=reason)
    assert raised.value.field == "reason"
    assert Number.objects.get(id=number.id).state == State.ASSIGNED
    # A service acting for the tenant (the portal over gRPC) is the tenant too.
    with pytest.raises(errors.ValidationError):
        services.number_release(
            number=number.number, actor=Actor.service("customer-portal-bff", tenant_id=alice.id), reason=reason
        )


def test_ops_may_give_a_compliance_reason_and_it_picks_the_compliance_cool_off(alice: Any) -> None:
    number = number_in(State.ASSIGNED, alice)
    result = services.number_release(number=number.number, tenant_id=alice.id, actor=OPS, reason="TENANT_DELETED")
    assert result.number["state"] == State.QUARANTINED
    ordinary = number_in(State.ASSIGNED, alice)
    tenant_result = services.number_release(number=ordinary.number, actor=as_tenant(alice), reason="moving on")
    assert tenant_result.number["quarantine_until"] < result.number["quarantine_until"]


def test_overlong_reason_is_a_validation_error_naming_reason(alice: Any) -> None:
    number = number_in(State.ASSIGNED, alice)
    with pytest.raises(errors.ValidationError) as raised:
        services.number_release(number=number.number, actor=OPS, tenant_id=alice.id, reason="x" * 65)
    assert raised.value.field == "reason" and "at most 64" in raised.value.message


def test_a_tenant_may_ask_for_a_shorter_term_never_a_longer_one(alice: Any) -> None:
    pool = TenantPool.objects.get(tenant=alice)
    longer = number_in(State.RESERVED, alice)
    with pytest.raises(errors.ValidationError) as raised:
        services.number_assign(
            number=longer.number, tenant_id=alice.id, actor=as_tenant(alice), lease_days=pool.default_lease_days + 1
        )
    assert raised.value.field == "lease_days"
    assert Number.objects.get(id=longer.id).state == State.RESERVED
    with pytest.raises(errors.ValidationError):
        services.number_assign(number=longer.number, tenant_id=alice.id, actor=as_tenant(alice), lease_days=3650)
    shorter = services.number_assign(number=longer.number, tenant_id=alice.id, actor=as_tenant(alice), lease_days=7)
    assert Lease.objects.get(id=shorter.lease["lease_id"]).term_days == 7
    default = number_in(State.RESERVED, alice)
    services.number_assign(number=default.number, tenant_id=alice.id, actor=as_tenant(alice))
    assert Lease.objects.get(number=default, status="ACTIVE").term_days == pool.default_lease_days


def test_ops_may_grant_a_longer_term(alice: Any) -> None:
    pool = TenantPool.objects.get(tenant=alice)
    number = number_in(State.RESERVED, alice)
    result = services.number_assign(
        number=number.number, tenant_id=alice.id, actor=OPS, lease_days=pool.default_lease_days + 30
    )
    assert Lease.objects.get(id=result.lease["lease_id"]).term_days == pool.default_lease_days + 30
