"""The lease facts billing-service charges by (issue 17): lease events carry the term, and
events of vanity numbers carry their tier; standard numbers' events have no tier at all."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import OutboxEvent
from numbering import services
from pools.models import InventoryPool
from tests.factories import InventoryPoolFactory, NumberFactory, ShortCodeFactory, TenantFactory, TenantPoolFactory
from tests.numbering.helpers import OPS

pytestmark = pytest.mark.django_db


def data_of(number: str, event_type: str) -> dict[str, Any]:
    return OutboxEvent.objects.filter(aggregate_id=number, event_type=event_type).latest("id").envelope["data"]


def test_assigned_and_renewed_events_carry_the_term_and_vanity_events_the_tier() -> None:
    vanity_pool = InventoryPoolFactory(code="VANITY_SHORT_CODES", kind=InventoryPool.Kind.SHORT_CODE, vanity=True)
    general = InventoryPoolFactory()
    tenant = TenantFactory()
    TenantPoolFactory(tenant=tenant, inventory_pools=[general, vanity_pool], quota_short_code=2, default_lease_days=45)
    vanity = ShortCodeFactory(vanity=True, vanity_tier="GOLD", pool=vanity_pool)
    plain = NumberFactory(pool=general)

    for n in (vanity, plain):
        services.number_assign(number=n.number, tenant_id=tenant.id, actor=OPS)
        services.number_renew(number=n.number, actor=OPS)
    assigned = data_of(vanity.number, "numbering.number.assigned.v1")
    assert (assigned["term_days"], assigned["vanity_tier"]) == (45, "GOLD")
    renewed = data_of(vanity.number, "numbering.lease.renewed.v1")
    assert (renewed["term_days"], renewed["vanity_tier"], renewed["lease_id"]) == (45, "GOLD", assigned["lease_id"])
    assert "vanity_tier" not in data_of(plain.number, "numbering.number.assigned.v1")
    assert data_of(plain.number, "numbering.lease.renewed.v1")["term_days"] == 45
