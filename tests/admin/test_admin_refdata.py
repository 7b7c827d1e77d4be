"""The admin writes reference data through the same services as REST (issue 16, ADR 1620):
the same audit event and outbox event per change, deactivation as an action, deactivated
rows read-only, delete impossible."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from core import authz as roles
from core.models import OutboxEvent
from pools.models import InventoryPool, Tenant, TenantPool
from tests.admin.conftest import staff_user
from tests.factories import IssuerFactory

pytestmark = pytest.mark.django_db


def test_an_admin_add_writes_the_same_audit_and_outbox_rows_as_rest(ops_client: Any) -> None:
    reply = ops_client.post(
        reverse("admin:pools_inventorypool_add"),
        {"code": "SILVER", "name": "Silver", "kind": "MSISDN", "low_watermark": 10, "critical_watermark": 5},
    )
    assert reply.status_code == 302, reply.content.decode()[:1500]
    audit = AuditEvent.objects.get(object_type="inventory_pool", object_id="SILVER")
    assert (audit.action, audit.actor) == ("inventory_pool.create", "user:olga")
    event = OutboxEvent.objects.get(aggregate_id="inventory_pool:SILVER")
    assert event.event_type == "numbering.inventory_pool.created.v1"
    assert event.envelope["data"]["audit_event_id"] == audit.id
    assert event.envelope["data"]["after"]["code"] == "SILVER"


def test_deactivate_action_goes_through_the_service_and_the_row_becomes_read_only(ops_client: Any, alice: Any) -> None:
    tp = TenantPool.objects.get(tenant=alice)
    changelist = reverse("admin:pools_tenantpool_changelist")
    reply = ops_client.post(changelist, {"action": "deactivate_selected", "_selected_action": [tp.pk]})
    assert reply.status_code == 302
    tp.refresh_from_db()
    assert tp.deactivated_at is not None
    assert AuditEvent.objects.filter(action="tenant_pool.deactivate", actor="user:olga").count() == 1
    assert OutboxEvent.objects.filter(event_type="numbering.tenant_pool.deactivated.v1").count() == 1
    # kept as it was: the change form no longer saves
    url = reverse("admin:pools_tenantpool_change", args=[tp.pk])
    before = (tp.quota_msisdn, AuditEvent.objects.count())
    ops_client.post(url, {"tenant": alice.pk, "quota_msisdn": 99})
    tp.refresh_from_db()
    assert (tp.quota_msisdn, AuditEvent.objects.count()) == before
    assert ops_client.get(reverse("admin:pools_tenantpool_delete", args=[tp.pk])).status_code == 403


def test_issuer_deactivation_is_the_numbering_admins_alone_in_the_admin_too(client: Any, ops_client: Any) -> None:
    issuer = IssuerFactory()
    changelist = reverse("admin:contracts_issuer_changelist")
    ops_client.post(changelist, {"action": "deactivate_selected", "_selected_action": [issuer.pk]})
    issuer.refresh_from_db()
    assert issuer.deactivated_at is None  # ops does not get the action
    client.force_login(staff_user("adam", roles.NUMBERING_ADMIN))
    client.post(changelist, {"action": "deactivate_selected", "_selected_action": [issuer.pk]})
    issuer.refresh_from_db()
    assert issuer.deactivated_at is not None
    assert OutboxEvent.objects.filter(event_type="numbering.issuer.deactivated.v1").count() == 1


def test_deactivating_a_tenant_in_the_admin_suspends_it(ops_client: Any, alice: Any) -> None:
    changelist = reverse("admin:pools_tenant_changelist")
    ops_client.post(changelist, {"action": "deactivate_selected", "_selected_action": [alice.pk]})
    assert Tenant.objects.get(pk=alice.pk).status == "SUSPENDED"
    assert OutboxEvent.objects.filter(event_type="numbering.tenant.deactivated.v1").count() == 1
    assert InventoryPool.objects.exists()


def test_the_admin_refuses_a_bad_issuer_prefix_like_rest_does_as_a_form_error(ops_client: Any) -> None:
    roshan = IssuerFactory(code="ROSHAN")
    reply = ops_client.post(
        reverse("admin:contracts_issuer_change", args=[roshan.pk]),
        {
            "code": "ROSHAN",
            "name": roshan.name,
            "kind": roshan.kind,
            "msisdn_prefixes": "79,99",
            "signing_keys-TOTAL_FORMS": "0",
            "signing_keys-INITIAL_FORMS": "0",
            "signing_keys-MIN_NUM_FORMS": "0",
            "signing_keys-MAX_NUM_FORMS": "1000",
        },
    )
    assert reply.status_code == 200 and "is not a mobile prefix" in reply.content.decode()
    roshan.refresh_from_db()
    assert "99" not in roshan.msisdn_prefixes
    assert not AuditEvent.objects.filter(object_type="issuer").exists()


def test_the_admin_refuses_deleting_a_tenant_by_status_as_a_form_error(ops_client: Any, alice: Any) -> None:
    url = reverse("admin:pools_tenant_change", args=[alice.pk])
    form = {"name": alice.name, "registration_no": alice.registration_no, "segment": alice.segment}
    reply = ops_client.post(url, {**form, "status": "DELETED"})
    assert reply.status_code == 200 and "DELETED comes from the tenant registry" in reply.content.decode()
    assert Tenant.objects.get(pk=alice.pk).status == "ACTIVE"
    ok = ops_client.post(url, {**form, "status": "SUSPENDED"})
    assert ok.status_code == 302
    assert OutboxEvent.objects.filter(event_type="numbering.tenant.deactivated.v1").count() == 1
