"""Issue 13 item 3: the Django admin bypassed the role matrix, the services and the audit chain.

The attacks: commerce.ops set a contract TERMINATED and back to ACTIVE in the change form,
and widened ROSHAN's msisdn_prefixes, without an audit event; regulator.exporter browsed
numbers, leases, tenants, audit events and idempotency records in the admin, which REST
denies it. Now admin writes go through audited services and permissions come from
core.authz (ADR 1351)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from contracts.models import Contract, Issuer
from core import authz as roles
from pools.models import InventoryPool
from tests.admin.conftest import staff_user
from tests.factories import ContractFactory, IssuerFactory

pytestmark = pytest.mark.django_db


def _contract_form(contract: Contract, **over: Any) -> dict[str, Any]:
    data = {
        "reference": contract.reference,
        "issuer": contract.issuer_id,
        "kind": contract.kind,
        "status": contract.status,
        "starts_on": contract.starts_on.isoformat(),
        "ends_on": contract.ends_on.isoformat() if contract.ends_on else "",
        "agreed_prefixes": ",".join(contract.agreed_prefixes),
    }
    return {**data, **over}


def test_the_attack_terminated_contract_cannot_be_reactivated_in_the_admin(ops_client: Any) -> None:
    contract = ContractFactory(status=Contract.Status.TERMINATED)
    url = reverse("admin:contracts_contract_change", args=[contract.pk])
    reply = ops_client.post(url, _contract_form(contract, status="ACTIVE"))
    assert reply.status_code == 200 and "cannot go from TERMINATED to ACTIVE" in reply.content.decode()
    contract.refresh_from_db()
    assert contract.status == Contract.Status.TERMINATED
    assert not AuditEvent.objects.filter(object_type="contract").exists()


def test_ops_cannot_terminate_in_the_form_but_an_allowed_edit_is_audited(ops_client: Any) -> None:
    contract = ContractFactory(status=Contract.Status.ACTIVE)
    url = reverse("admin:contracts_contract_change", args=[contract.pk])
    refused = ops_client.post(url, _contract_form(contract, status="TERMINATED"))
    assert refused.status_code == 200 and "needs one of the roles" in refused.content.decode()
    ok = ops_client.post(url, _contract_form(contract, agreed_prefixes="79"))
    assert ok.status_code == 302, ok.content.decode()[:1500]
    event = AuditEvent.objects.get(object_type="contract")
    assert (event.action, event.actor) == ("contract.update", "user:olga")
    assert event.before["agreed_prefixes"] == [] and event.after["agreed_prefixes"] == ["79"]


def test_the_attack_widening_an_issuers_prefixes_in_the_admin_leaves_an_audit_event(ops_client: Any) -> None:
    roshan = IssuerFactory(code="ROSHAN")
    url = reverse("admin:contracts_issuer_change", args=[roshan.pk])
    everything = ",".join(str(p) for p in range(70, 80))
    reply = ops_client.post(
        url,
        {
            "code": "ROSHAN",
            "name": roshan.name,
            "kind": roshan.kind,
            "msisdn_prefixes": everything,
            "signing_keys-TOTAL_FORMS": "0",
            "signing_keys-INITIAL_FORMS": "0",
            "signing_keys-MIN_NUM_FORMS": "0",
            "signing_keys-MAX_NUM_FORMS": "1000",
        },
    )
    assert reply.status_code == 302, reply.content.decode()[:1500]
    assert Issuer.objects.get(pk=roshan.pk).msisdn_prefixes == everything.split(",")
    event = AuditEvent.objects.get(object_type="issuer")
    assert (event.action, event.actor, event.object_id) == ("issuer.update", "user:olga", "ROSHAN")
    assert event.before["msisdn_prefixes"] == ["79", "72"] and len(event.after["msisdn_prefixes"]) == 10


def test_reference_data_is_never_deleted_and_adds_are_audited(client: Any) -> None:
    admin_user = staff_user("adam", roles.NUMBERING_ADMIN)
    client.force_login(admin_user)
    issuer = IssuerFactory(code="ATRA", kind=Issuer.Kind.REGULATOR)
    assert client.get(reverse("admin:contracts_issuer_delete", args=[issuer.pk])).status_code == 403
    reply = client.post(
        reverse("admin:pools_inventorypool_add"),
        {"code": "gold", "name": "Gold", "kind": "MSISDN", "low_watermark": 10, "critical_watermark": 5},
    )
    assert reply.status_code == 302, reply.content.decode()[:1500]
    pool = InventoryPool.objects.get(code="gold")
    assert client.get(reverse("admin:pools_inventorypool_delete", args=[pool.pk])).status_code == 403
    assert AuditEvent.objects.filter(action="inventory_pool.create", object_id="gold", actor="user:adam").exists()


# admin changelist -> does REST let regulator.exporter read the same thing?
REGULATOR_DENIED = [
    "admin:numbering_number_changelist",
    "admin:numbering_lease_changelist",
    "admin:numbering_reservation_changelist",
    "admin:pools_tenant_changelist",
    "admin:pools_tenantpool_changelist",
    "admin:pools_inventorypool_changelist",
    "admin:audit_auditevent_changelist",
    "admin:core_idempotencyrecord_changelist",
    "admin:contracts_signingkey_changelist",
    "admin:contracts_inventoryimport_changelist",
    "admin:contracts_inventoryimport_wizard",
    "admin:exports_inventory_csv",
]


def test_the_attack_regulator_exporter_is_denied_in_the_admin_where_rest_denies(client: Any) -> None:
    client.force_login(staff_user("rita", roles.REGULATOR_EXPORTER))
    allowed = {name: client.get(reverse(name)).status_code for name in REGULATOR_DENIED}
    assert allowed == dict.fromkeys(REGULATOR_DENIED, 403)
    # What REST grants it, the admin grants too.
    assert client.get(reverse("admin:contracts_contract_changelist")).status_code == 200
    assert client.get(reverse("admin:contracts_issuer_changelist")).status_code == 200


def test_the_auditor_reads_but_does_not_write_in_the_admin(client: Any) -> None:
    client.force_login(staff_user("aud", roles.AUDITOR))
    assert client.get(reverse("admin:numbering_number_changelist")).status_code == 200
    assert client.get(reverse("admin:core_idempotencyrecord_changelist")).status_code == 200
    assert client.get(reverse("admin:contracts_issuer_add")).status_code == 403
