"""Reference data written over REST (issue 16, ADR 1620): create, change and deactivate each
entity through its audited service — one audit event and one outbox event per change, bad
fields named, roles from core.authz, nothing deleted."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from audit.models import AuditEvent
from contracts.models import Contract, Issuer, NumberBlock
from core import errors
from core.models import OutboxEvent
from core.refdata import REFDATA_EVENT_TYPES
from numbering import services as numbering_services
from numbering.models import Number
from pools.models import InventoryPool, Tenant, TenantPool
from tests.api.conftest import Api, make_token
from tests.factories import ContractFactory, IssuerFactory, NumberFactory

pytestmark = pytest.mark.django_db

A = "/api/admin/v1"


@pytest.fixture
def ops() -> str:
    return make_token("commerce.ops", sub="ops.olga")


@pytest.fixture
def admin() -> str:
    return make_token("numbering.admin", sub="admin.ada")


def events(object_type: str) -> tuple[list[str], list[str]]:
    audit = list(AuditEvent.objects.filter(object_type=object_type).order_by("id").values_list("action", flat=True))
    outbox = list(
        OutboxEvent.objects.filter(event_type__startswith=f"numbering.{object_type}.")
        .order_by("id")
        .values_list("event_type", flat=True)
    )
    return audit, outbox


def test_ops_creates_changes_and_deactivates_an_inventory_pool(api: Api, ops: str) -> None:
    body = {"code": "GOV_MSISDN", "name": "Government", "kind": "MSISDN", "government_reserved": True}
    created = api.post(f"{A}/inventory-pools/", ops, body)
    assert created.status == 201, created.json
    pk = created.json["id"]
    changed = api.call("PATCH", f"{A}/inventory-pools/{pk}/", ops, {"low_watermark": 500})
    assert changed.status == 200, changed.json
    assert changed.json["low_watermark"] == 500 and changed.json["name"] == "Government"
    gone = api.post(f"{A}/inventory-pools/{pk}/deactivate/", ops)
    assert gone.status == 200 and gone.json["deactivated_at"] is not None
    assert events("inventory_pool") == (
        ["inventory_pool.create", "inventory_pool.update", "inventory_pool.deactivate"],
        [
            "numbering.inventory_pool.created.v1",
            "numbering.inventory_pool.updated.v1",
            "numbering.inventory_pool.deactivated.v1",
        ],
    )
    update = OutboxEvent.objects.get(event_type="numbering.inventory_pool.updated.v1")
    assert update.envelope["data"]["changed"] == ["low_watermark"]
    assert update.envelope["data"]["actor"] == "user:ops.olga" or "ops.olga" in update.envelope["data"]["actor"]
    assert update.aggregate_id == "inventory_pool:GOV_MSISDN"
    # kept, not deleted; and a deactivated row is not changed again
    assert InventoryPool.objects.filter(code="GOV_MSISDN").exists()
    again = api.call("PATCH", f"{A}/inventory-pools/{pk}/", ops, {"low_watermark": 7})
    assert again.status == 422 and again.json["field"] == "deactivated_at"
    assert InventoryPool.objects.get(pk=pk).low_watermark == 500


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("inventory-pools/", {"code": "X", "name": "x", "kind": "LANDLINE"}, "kind"),
        ("issuers/", {"code": "NEWCO", "name": "NewCo", "kind": "MNO", "msisdn_prefixes": ["99"]}, "msisdn_prefixes"),
        ("tenants/", {"name": "T", "registration_no": "R-1", "segment": "SMB", "status": "DELETED"}, "status"),
        ("contracts/", {"reference": "C-1", "issuer": "NOPE", "starts_on": "2026-01-01"}, "issuer"),
    ],
)
def test_a_bad_field_is_refused_by_name_and_nothing_is_written(
    api: Api, ops: str, path: str, body: dict[str, Any], field: str
) -> None:
    before = (AuditEvent.objects.count(), OutboxEvent.objects.count())
    reply = api.post(f"{A}/{path}", ops, body)
    assert reply.status in (400, 422), reply.json
    assert field in str(reply.json), reply.json
    assert (AuditEvent.objects.count(), OutboxEvent.objects.count()) == before


def test_roles_outside_the_matrix_are_refused(api: Api) -> None:
    body = {"name": "T", "registration_no": "R-2", "segment": "SMB"}
    for role in ("auditor", "regulator.exporter", "key.manager"):
        assert api.post(f"{A}/tenants/", make_token(role), body).status == 403, role
    issuer = IssuerFactory()
    assert api.post(f"{A}/issuers/{issuer.code}/deactivate/", make_token("commerce.ops")).status == 403
    assert not Tenant.objects.filter(registration_no="R-2").exists()


def test_delete_is_405_everywhere_and_the_row_stays(api: Api, admin: str, alice: Any) -> None:
    issuer = IssuerFactory()
    contract = ContractFactory(issuer=issuer)
    paths = [
        f"issuers/{issuer.code}/",
        f"contracts/{contract.id}/",
        f"tenants/{alice.id}/",
        f"tenant-pools/{TenantPool.objects.get(tenant=alice).id}/",
        f"inventory-pools/{InventoryPool.objects.first().id}/",  # type: ignore[union-attr]
        "quarantine-policies/MSISDN/",
    ]
    for path in paths:
        assert api.call("DELETE", f"{A}/{path}", admin).status == 405, path
    assert Issuer.objects.filter(pk=issuer.pk).exists() and Tenant.objects.filter(pk=alice.pk).exists()


def test_tenant_create_with_registry_id_update_and_deactivate(api: Api, ops: str) -> None:
    tid = str(uuid.uuid4())
    body = {"id": tid, "name": "Acme", "registration_no": "REG-ACME", "segment": "ENTERPRISE"}
    assert api.post(f"{A}/tenants/", ops, body).status == 201
    assert api.call("PATCH", f"{A}/tenants/{tid}/", ops, {"name": "Acme Ltd"}).json["name"] == "Acme Ltd"
    reply = api.post(f"{A}/tenants/{tid}/deactivate/", ops)
    assert reply.status == 200 and reply.json["status"] == "SUSPENDED"
    audit, outbox = events("tenant")
    assert audit == ["tenant.create", "tenant.update", "tenant.deactivate"]
    assert outbox[-1] == "numbering.tenant.deactivated.v1"
    assert all(e.envelope["tenant_id"] == tid for e in OutboxEvent.objects.filter(aggregate_id=f"tenant:{tid}"))
    # DELETED is the tenant registry's, never set over REST
    refused = api.call("PATCH", f"{A}/tenants/{tid}/", ops, {"status": "DELETED"})
    assert refused.status == 422 and refused.json["field"] == "status"


def test_a_deactivated_tenant_pool_cannot_be_reserved_from(api: Api, ops: str, alice: Any) -> None:
    tp = TenantPool.objects.get(tenant=alice)
    number = NumberFactory(pool=tp.inventory_pools.first())
    assert api.post(f"{A}/tenant-pools/{tp.id}/deactivate/", ops).status == 200
    from core.actors import Actor

    with pytest.raises(errors.NotAvailable, match="deactivated"):
        numbering_services.number_reserve(number=number.number, tenant_id=alice.id, actor=Actor.system("test"))
    assert Number.objects.get(pk=number.pk).state == "AVAILABLE"


def test_a_deactivated_inventory_pool_is_drawn_from_by_no_tenant(api: Api, ops: str, alice: Any) -> None:
    tp = TenantPool.objects.get(tenant=alice)
    pool = tp.inventory_pools.first()
    number = NumberFactory(pool=pool)
    assert api.post(f"{A}/inventory-pools/{pool.id}/deactivate/", ops).status == 200  # type: ignore[union-attr]
    from core.actors import Actor

    with pytest.raises(errors.NotAvailable):
        numbering_services.number_reserve(number=number.number, tenant_id=alice.id, actor=Actor.system("test"))


def test_tenant_pool_create_and_entitlement_change(api: Api, ops: str, general_pool: Any) -> None:
    tenant = Tenant.objects.create(name="Zed", registration_no="REG-ZED", segment="SMB")
    reply = api.post(
        f"{A}/tenant-pools/", ops, {"tenant": str(tenant.id), "inventory_pools": [general_pool.code], "quota_msisdn": 3}
    )
    assert reply.status == 201, reply.json
    assert reply.json["inventory_pools"] == [general_pool.code]
    dup = api.post(f"{A}/tenant-pools/", ops, {"tenant": str(tenant.id)})
    assert dup.status == 400 and "tenant" in str(dup.json)
    ttl = api.call("PATCH", f"{A}/tenant-pools/{reply.json['id']}/", ops, {"reservation_ttl_seconds": 0})
    assert ttl.status in (400, 422) and "reservation_ttl_seconds" in str(ttl.json)
    assert events("tenant_pool")[1] == ["numbering.tenant_pool.created.v1"]


def test_issuer_block_contract_writes_and_idempotent_replay(api: Api, ops: str, admin: str) -> None:
    body = {"code": "NEWCO", "name": "NewCo", "kind": "MNO", "msisdn_prefixes": ["75"]}
    first = api.post(f"{A}/issuers/", ops, body, headers={"Idempotency-Key": "k-issuer-1"})
    replay = api.post(f"{A}/issuers/", ops, body, headers={"Idempotency-Key": "k-issuer-1"})
    assert first.status == 201 and replay.status == 201 and replay.body == first.body
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert Issuer.objects.filter(code="NEWCO").count() == 1
    contract = api.post(
        f"{A}/contracts/", ops, {"reference": "MOU-NEWCO", "issuer": "NEWCO", "starts_on": "2026-01-01"}
    )
    assert contract.status == 201 and contract.json["status"] == "DRAFT"
    cid = contract.json["id"]
    assert api.call("PATCH", f"{A}/contracts/{cid}/", ops, {"status": "ACTIVE"}).status == 200
    bad = api.call("PATCH", f"{A}/contracts/{cid}/", ops, {"status": "DRAFT"})
    assert bad.status == 422 and bad.json["field"] == "status"
    block = api.post(f"{A}/blocks/", ops, {"name": "B1", "issuer": "NEWCO", "contract": "MOU-NEWCO", "kind": "MSISDN"})
    assert block.status == 201, block.json
    assert api.post(f"{A}/blocks/{block.json['id']}/deactivate/", ops).status == 200
    assert NumberBlock.objects.get(pk=block.json["id"]).deactivated_at is not None
    assert api.post(f"{A}/issuers/NEWCO/deactivate/", admin).status == 200
    late = api.post(f"{A}/contracts/", ops, {"reference": "MOU-2", "issuer": "NEWCO", "starts_on": "2026-01-01"})
    assert late.status == 400 and late.json["field"] == "issuer"
    assert Contract.objects.filter(reference="MOU-2").count() == 0
    # terminating (the contract's deactivation) is published too, as its own event (ADR 1611)
    assert api.post(f"{A}/contracts/{cid}/terminate/", admin, {"reason": "ended"}).status == 200
    assert events("contract")[1][-1] == "numbering.contract.terminated.v1"


def test_every_published_refdata_type_is_in_the_registry() -> None:
    assert "numbering.tenant_pool.updated.v1" in REFDATA_EVENT_TYPES
    assert all(t.startswith("numbering.") and t.endswith(".v1") for t in REFDATA_EVENT_TYPES)


def test_a_compliance_officer_records_an_approved_cool_off_change_published_as_an_event(api: Api) -> None:
    officer = make_token("compliance.officer", sub="comp.cora")
    body = {"days": 120, "approved_by": "legal.lina", "approved_at": "2026-01-01T00:00:00Z"}
    reply = api.call("PATCH", f"{A}/quarantine-policies/MSISDN/", officer, body)
    assert reply.status == 200, reply.json
    event = OutboxEvent.objects.get(event_type="numbering.quarantine_policy.updated.v1")
    assert event.envelope["data"]["after"]["days"] == 120 and "days" in event.envelope["data"]["changed"]
    assert AuditEvent.objects.filter(action="quarantine_policy.update").count() == 1
    assert api.call("PATCH", f"{A}/quarantine-policies/MSISDN/", make_token("commerce.ops"), body).status == 403
