"""Tenant suspended / deleted → bulk recall with the compliance cool-off, once per message."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.models import AuditEvent
from core.rls import rls_scope
from events.consumers import InvalidMessage, parse_message
from events.models import ProcessedMessage
from events.publishers import SUBJECT_PUBLISHERS, signed_headers
from numbering.lifecycle import State
from numbering.models import Number, Reservation
from pools.models import Tenant
from tests.events.conftest import wait_for
from tests.numbering.helpers import number_in

SUSPENDED = "compliance.tenant.suspended.v1"
DELETED = "tenant.deleted.v1"


def publish(
    server: Any, subject: str, body: Any, msg_id: str | None = None, *, signed_as: str | None = "owner"
) -> None:
    """Publish as the subject's publisher, signed (signed_as="owner"), as another identity, or unsigned (None)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Nats-Msg-Id": msg_id or str(uuid.uuid4())}
    if signed_as is not None:
        identity = SUBJECT_PUBLISHERS[subject] if signed_as == "owner" else signed_as
        headers |= signed_headers(identity, settings.EVENT_PUBLISHER_KEYS[identity], subject, data)
    server.run(lambda js: js.publish(subject, data, headers=headers))


def signed(subject: str, data: bytes, **extra: str) -> dict[str, str]:
    identity = SUBJECT_PUBLISHERS.get(subject, "compliance-service")
    return {**extra, **signed_headers(identity, settings.EVENT_PUBLISHER_KEYS[identity], subject, data)}


def envelope(subject: str, tenant_id: Any, event_id: str | None = None, **data: Any) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": subject,
        "source": "compliance-service",
        "time": timezone.now().isoformat(),
        "tenant_id": str(tenant_id),
        "data": {"tenant_id": str(tenant_id), **data},
    }


def consumer_idle(server: Any, stream: str, durable: str) -> bool:
    info = server.run(lambda js: js.consumer_info(stream, durable))
    return info.num_pending == 0 and info.num_ack_pending == 0


def counter(subject: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("numbering_event_consumer_messages_total", {"subject": subject, "outcome": outcome})
        or 0.0
    )


def held(tenant: Any) -> list[Number]:
    with transaction.atomic(), rls_scope(platform=True):
        return list(Number.objects.filter(tenant_id=tenant.id))


def snapshot(numbers: list[Number]) -> list[tuple[str, int, Any]]:
    with transaction.atomic(), rls_scope(platform=True):
        return [
            (n.state, n.version, n.quarantine_until)
            for n in Number.objects.filter(id__in=[x.id for x in numbers]).order_by("id")
        ]


@pytest.fixture
def holdings(committed: Any, alice: Any, bob: Any, settings: Any) -> dict[str, list[Number]]:
    settings.EVENT_RECALL_BATCH = 2  # several batches for alice's five numbers
    with transaction.atomic(), rls_scope(platform=True):
        return {
            "alice": [number_in(State.ASSIGNED, alice) for _ in range(3)]
            + [number_in(State.RESERVED, alice) for _ in range(2)],
            "bob": [number_in(State.ASSIGNED, bob), number_in(State.RESERVED, bob)],
        }


def test_suspension_recalls_all_the_tenants_numbers_with_the_compliance_cool_off_and_leaves_others(
    nats_server: Any, consumers: Any, holdings: Any, alice: Any, bob: Any
) -> None:
    bob_before = snapshot(holdings["bob"])
    publish(nats_server, SUSPENDED, envelope(SUSPENDED, alice.id, reason="KYC failed"))

    wait_for(lambda: consumers.handled, what="message handled")
    wait_for(lambda: consumer_idle(nats_server, "COMPLIANCE", "numbering-tenant-suspended"), what="acked")

    assert consumers.handled[0][1] == "applied"
    assert Tenant.objects.get(id=alice.id).status == "SUSPENDED"
    assert held(alice) == []
    states = snapshot(holdings["alice"])
    assert [s for s, _, _ in states] == ["QUARANTINED"] * 3 + ["AVAILABLE"] * 2
    for _, _, until in states[:3]:
        assert timedelta(days=364, hours=23) < until - timezone.now() <= timedelta(days=365)
    with transaction.atomic(), rls_scope(platform=True):
        assert set(Reservation.objects.filter(tenant_id=alice.id).values_list("status", flat=True)) >= {"RECALLED"}
    recalls = AuditEvent.objects.filter(action="recall", tenant_id=alice.id)
    assert recalls.count() == 5 and {e.actor for e in recalls} == {"system:compliance-consumer"}
    assert AuditEvent.objects.filter(action="tenant_suspended", object_id=str(alice.id)).count() == 1
    assert snapshot(holdings["bob"]) == bob_before
    assert Tenant.objects.get(id=bob.id).status == "ACTIVE"
    processed = ProcessedMessage.objects.get()
    assert processed.outcome == "applied" and processed.detail["recall"] == {"recalled": 5}


def test_the_same_message_twice_has_no_second_effect(
    nats_server: Any, consumers: Any, holdings: Any, alice: Any
) -> None:
    body = envelope(SUSPENDED, alice.id)
    publish(nats_server, SUSPENDED, body)
    wait_for(lambda: len(consumers.handled) == 1, what="first delivery")
    after_first = (snapshot(holdings["alice"]), AuditEvent.objects.count())
    duplicates = counter(SUSPENDED, "duplicate")

    publish(nats_server, SUSPENDED, body)  # re-sent by the producer under a new Nats-Msg-Id

    wait_for(lambda: len(consumers.handled) == 2, what="second delivery")
    wait_for(lambda: consumer_idle(nats_server, "COMPLIANCE", "numbering-tenant-suspended"), what="acked")
    assert consumers.handled[1] == (body["id"], "duplicate")
    assert (snapshot(holdings["alice"]), AuditEvent.objects.count()) == after_first
    assert ProcessedMessage.objects.count() == 1
    assert counter(SUSPENDED, "duplicate") == duplicates + 1


def test_malformed_messages_are_terminated_and_counted_and_the_next_one_still_works(
    nats_server: Any, consumers: Any, holdings: Any, bob: Any
) -> None:
    invalid_before = counter(SUSPENDED, "invalid")
    publish(nats_server, SUSPENDED, b"{not json")
    publish(nats_server, SUSPENDED, {"id": "x1", "type": SUSPENDED, "data": {}})
    publish(nats_server, SUSPENDED, {"id": "x2", "tenant_id": "not-a-uuid"})
    publish(nats_server, SUSPENDED, envelope(SUSPENDED, bob.id))

    wait_for(lambda: len(consumers.handled) == 4, what="four messages handled")
    wait_for(lambda: consumer_idle(nats_server, "COMPLIANCE", "numbering-tenant-suspended"), what="settled")

    assert [o for _, o in consumers.handled] == ["invalid", "invalid", "invalid", "applied"]
    assert counter(SUSPENDED, "invalid") == invalid_before + 3
    assert (
        REGISTRY.get_sample_value("numbering_event_consumer_invalid_total", {"subject": SUSPENDED, "rule": "tenant_id"})
        >= 2
    )
    info = nats_server.run(lambda js: js.consumer_info("COMPLIANCE", "numbering-tenant-suspended"))
    assert info.num_redelivered == 0  # terminated, never retried
    assert held(bob) == []


def test_tenant_deleted_marks_the_tenant_deleted_and_recalls(
    nats_server: Any, consumers: Any, holdings: Any, alice: Any
) -> None:
    publish(nats_server, DELETED, envelope(DELETED, alice.id))
    wait_for(lambda: consumers.handled, what="handled")
    wait_for(lambda: consumer_idle(nats_server, "TENANT", "numbering-tenant-deleted"), what="acked")
    assert Tenant.objects.get(id=alice.id).status == "DELETED"
    assert held(alice) == []
    assert ProcessedMessage.objects.get().subject == DELETED


def test_an_unknown_tenant_is_remembered_and_acked(nats_server: Any, consumers: Any, committed: Any) -> None:
    publish(nats_server, SUSPENDED, envelope(SUSPENDED, uuid.uuid4()))
    wait_for(lambda: consumers.handled, what="handled")
    assert consumers.handled[0][1] == "unknown_tenant"
    wait_for(lambda: consumer_idle(nats_server, "COMPLIANCE", "numbering-tenant-suspended"), what="acked")


@pytest.mark.parametrize(
    ("subject", "body", "rule"),
    [
        ("other.subject.v1", b"{}", "subject"),
        (SUSPENDED, b"[1]", "json"),
        (SUSPENDED, b'{"tenant_id": "6f1c2d9e-1111-4222-8333-444455556666"}', "id"),
        (
            SUSPENDED,
            b'{"id": "a", "type": "tenant.deleted.v1", "tenant_id": "6f1c2d9e-1111-4222-8333-444455556666"}',
            "type",
        ),
        (
            SUSPENDED,
            b'{"id": "a", "tenant_id": "6f1c2d9e-1111-4222-8333-444455556666", "data": {"reason": 5}}',
            "reason",
        ),
    ],
)
def test_parse_message_names_the_rule_that_failed(subject: str, body: bytes, rule: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_message(subject, body, signed(subject, body))
    assert info.value.rule == rule


def test_parse_message_takes_the_id_from_the_header_when_the_body_has_none() -> None:
    tenant = uuid.uuid4()
    body = json.dumps({"data": {"tenant_id": str(tenant)}}).encode()
    event = parse_message(DELETED, body, signed(DELETED, body, **{"Nats-Msg-Id": "m-1"}), 7)
    assert (event.message_id, event.tenant_id, event.stream_sequence) == ("m-1", tenant, 7)


def test_the_attack_an_unauthorised_publisher_triggers_no_recall(
    nats_server: Any, consumers: Any, holdings: Any, alice: Any, bob: Any
) -> None:
    """Issue 13 item 5: anyone able to publish on compliance.> could make us recall a tenant's
    numbers. Unsigned, forged, and signed-by-another-identity messages are terminated now;
    only the compliance service's signature recalls (ADR 1353)."""
    before_alice = held(alice)
    publish(nats_server, SUSPENDED, envelope(SUSPENDED, alice.id), signed_as=None)
    publish(nats_server, SUSPENDED, envelope(SUSPENDED, alice.id), signed_as="tenant-service")
    forged = json.dumps(envelope(SUSPENDED, alice.id)).encode()
    nats_server.run(
        lambda js: js.publish(
            SUSPENDED,
            forged,
            headers={"Numbering-Publisher": "compliance-service", "Numbering-Signature": "00" * 32},
        )
    )
    publish(nats_server, SUSPENDED, envelope(SUSPENDED, bob.id))  # the real one, for bob
    wait_for(lambda: len(consumers.handled) == 4, what="four messages handled")
    assert [o for _, o in consumers.handled] == ["invalid", "invalid", "invalid", "applied"]
    assert held(alice) == before_alice and before_alice  # nothing recalled
    assert Tenant.objects.get(id=alice.id).status == "ACTIVE"
    assert held(bob) == []
    assert (
        REGISTRY.get_sample_value("numbering_event_consumer_invalid_total", {"subject": SUSPENDED, "rule": "publisher"})
        >= 3
    )
