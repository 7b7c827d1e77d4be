"""Writing outbox events in the business transaction (DESIGN §4). Publishing is the relay's job."""

from __future__ import annotations

import json
import uuid
import zlib
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core import clock, sqlbatch
from core.models import OutboxEvent

SOURCE = "numbering-service"
NOTIFY_CHANNEL = "numbering_outbox"


def partition_for(aggregate_id: str) -> int:
    """One partition per hash of the aggregate: a number's events stay in one ordered lane."""
    return zlib.crc32(aggregate_id.encode()) % settings.OUTBOX_PARTITIONS


def outbox_enqueue(
    *,
    event_type: str,
    aggregate_id: str,
    data: dict[str, Any],
    tenant_id: uuid.UUID | str | None = None,
    sequence: int | None = None,
    subject: str | None = None,
) -> OutboxEvent:
    event, fragment = outbox_prepare(
        event_type=event_type,
        aggregate_id=aggregate_id,
        data=data,
        tenant_id=tenant_id,
        sequence=sequence,
        subject=subject,
    )
    event.id, _ = sqlbatch.execute([fragment])
    return event


def outbox_prepare(
    *,
    event_type: str,
    aggregate_id: str,
    data: dict[str, Any],
    tenant_id: uuid.UUID | str | None = None,
    sequence: int | None = None,
    subject: str | None = None,
) -> tuple[OutboxEvent, sqlbatch.Fragment]:
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_enqueue must run inside the business transaction")
    event_id = uuid.uuid4()
    envelope = {
        "id": str(event_id),
        "type": event_type,
        "source": SOURCE,
        "time": clock.now().isoformat(),
        "subject": aggregate_id,
        "tenant_id": str(tenant_id) if tenant_id else None,
        "sequence": sequence,
        "data": data,
    }
    partition = partition_for(aggregate_id)
    event = OutboxEvent(
        event_id=event_id,
        event_type=event_type,
        subject=subject or event_type,
        aggregate_id=aggregate_id,
        partition=partition,
        envelope=envelope,
    )
    # The row and the NOTIFY (delivered at commit; wakes the relay that owns the partition)
    # in one statement, which the caller may send together with its other final writes.
    fragment = sqlbatch.Fragment(
        "INSERT INTO numbering_outboxevent (event_id, event_type, subject, aggregate_id, partition, envelope,"
        " created_at, attempts, last_error) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, 0, '') RETURNING id",
        [event_id, event.event_type, event.subject, aggregate_id, partition, json.dumps(envelope), timezone.now()],
        select="(SELECT id FROM {cte}), pg_notify(%s, %s)",
        select_params=[NOTIFY_CHANNEL, str(partition)],
    )
    return event, fragment
