"""Writing outbox events in the business transaction (DESIGN §4). Publishing is the relay's job."""

from __future__ import annotations

import uuid
import zlib
from typing import Any

from django.conf import settings
from django.db import connection

from core import clock
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
    event = OutboxEvent.objects.create(
        event_id=event_id,
        event_type=event_type,
        subject=subject or event_type,
        aggregate_id=aggregate_id,
        partition=partition,
        envelope=envelope,
    )
    with connection.cursor() as cursor:
        # Delivered at commit; wakes the relay that owns the partition.
        cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, str(partition)])
    return event
