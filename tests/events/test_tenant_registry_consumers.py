"""tenant.created.v1 / tenant.updated.v1 from the tenant registry → the tenant mirror, through
the audited tenant service, once per message id, signed by tenant-service only (issue 16,
ADR 1621). Real NATS (a private nats-server per test), real PostgreSQL commits."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from audit.models import AuditEvent
from core.models import OutboxEvent
from events.consumers import InvalidMessage, parse_message
from events.models import ProcessedMessage
from pools.models import Tenant
from tests.events.conftest import wait_for
from tests.events.test_consumers import consumer_idle, envelope, publish

CREATED = "tenant.created.v1"
UPDATED = "tenant.updated.v1"


def fields(**over: Any) -> dict[str, Any]:
    return {"name": "Registry Co", "registration_no": "REG-RC-1", "segment": "SMB", **over}


def test_created_then_updated_provisions_the_tenant_audited_as_the_registry(
    nats_server: Any, consumers: Any, committed: Any
) -> None:
    tid = uuid.uuid4()
    publish(nats_server, CREATED, envelope(CREATED, tid, **fields()))
    wait_for(lambda: Tenant.objects.filter(id=tid).exists(), what="tenant created")
    publish(nats_server, UPDATED, envelope(UPDATED, tid, name="Registry Company", status="SUSPENDED"))
    wait_for(lambda: len(consumers.handled) == 2, what="both handled")
    wait_for(lambda: consumer_idle(nats_server, "TENANT", "numbering-tenant-updated"), what="acked")

    tenant = Tenant.objects.get(id=tid)
    assert (tenant.name, tenant.registration_no, tenant.segment, tenant.status) == (
        "Registry Company",
        "REG-RC-1",
        "SMB",
        "SUSPENDED",
    )
    assert [o for _, o in consumers.handled] == ["created", "updated"]
    audit = AuditEvent.objects.filter(object_type="tenant", object_id=str(tid)).order_by("id")
    assert [(e.action, e.actor) for e in audit] == [
        ("tenant.create", "system:tenant-registry"),
        ("tenant.deactivate", "system:tenant-registry"),
    ]
    assert list(
        OutboxEvent.objects.filter(aggregate_id=f"tenant:{tid}").order_by("id").values_list("event_type", flat=True)
    ) == ["numbering.tenant.created.v1", "numbering.tenant.deactivated.v1"]
    assert ProcessedMessage.objects.filter(subject__in=[CREATED, UPDATED]).count() == 2


def test_a_replayed_message_changes_nothing(nats_server: Any, consumers: Any, committed: Any) -> None:
    tid = uuid.uuid4()
    body = envelope(CREATED, tid, **fields(registration_no="REG-RC-2"))
    publish(nats_server, CREATED, body)
    wait_for(lambda: len(consumers.handled) == 1, what="first")
    counts = (AuditEvent.objects.count(), OutboxEvent.objects.count())
    publish(nats_server, CREATED, body)  # re-sent under a new Nats-Msg-Id, same event id
    wait_for(lambda: len(consumers.handled) == 2, what="second")
    assert consumers.handled[1] == (body["id"], "duplicate")
    assert (AuditEvent.objects.count(), OutboxEvent.objects.count()) == counts
    assert Tenant.objects.filter(id=tid).count() == 1


def test_unsigned_or_foreign_publishers_and_malformed_events_create_nothing(
    nats_server: Any, consumers: Any, committed: Any
) -> None:
    tid = uuid.uuid4()
    publish(nats_server, CREATED, envelope(CREATED, tid, **fields()), signed_as=None)
    publish(nats_server, CREATED, envelope(CREATED, tid, **fields()), signed_as="compliance-service")
    publish(nats_server, CREATED, envelope(CREATED, tid, name="No segment", registration_no="R"))
    wait_for(lambda: len(consumers.handled) == 3, what="three handled")
    wait_for(lambda: consumer_idle(nats_server, "TENANT", "numbering-tenant-created"), what="settled")
    assert [o for _, o in consumers.handled] == ["invalid"] * 3
    assert not Tenant.objects.filter(id=tid).exists()
    info = nats_server.run(lambda js: js.consumer_info("TENANT", "numbering-tenant-created"))
    assert info.num_redelivered == 0  # terminated, never retried


def test_a_change_our_rules_refuse_is_remembered_with_its_reason_and_not_retried(
    nats_server: Any, consumers: Any, committed: Any, alice: Any, bob: Any
) -> None:
    # bob's registration number is bob's: the registry cannot give it to alice
    publish(nats_server, UPDATED, envelope(UPDATED, alice.id, registration_no=bob.registration_no))
    wait_for(lambda: consumers.handled, what="handled")
    assert consumers.handled[0][1] == "refused"
    processed = ProcessedMessage.objects.get(subject=UPDATED)
    assert "registration_no" in processed.detail["refused"]
    assert Tenant.objects.get(id=alice.id).registration_no == "REG-ALICE"


@pytest.mark.parametrize(
    ("subject", "data", "rule"),
    [
        (CREATED, {"name": "X", "registration_no": "R"}, "segment"),
        (CREATED, {"name": "", "registration_no": "R", "segment": "SMB"}, "name"),
        (UPDATED, {"segment": "HUGE"}, "segment"),
        (UPDATED, {"status": "DELETED"}, "status"),
        (UPDATED, {}, "data"),
    ],
)
def test_parse_names_the_rule(subject: str, data: dict[str, Any], rule: str, settings: Any) -> None:
    settings.EVENT_SIGNATURES_REQUIRED = False
    import json

    body = json.dumps({"id": "m1", "type": subject, "tenant_id": str(uuid.uuid4()), "data": data}).encode()
    with pytest.raises(InvalidMessage) as exc:
        parse_message(subject, body, {})
    assert exc.value.rule == rule
