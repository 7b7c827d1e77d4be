"""The kernel's tables: what every app writes in its business transaction.

Idempotency records and outbox events are written by every app's services (numbering,
pools, contracts, exports, audit checkpoints), so they live here rather than in one app.
The tables keep their original names (ADR 1001): the move changed no SQL.
"""

from __future__ import annotations

import uuid

from django.db import models


class IdempotencyRecord(models.Model):
    """First response of a mutation, keyed by (caller identity, idempotency key)."""

    scope = models.CharField(max_length=200)
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    # Canonical JSON text, not jsonb: a replay must return the first response byte for
    # byte, and jsonb would reorder its keys.
    response = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "numbering_idempotencyrecord"
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique")]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expires_at")]


class OutboxEvent(models.Model):
    """Transactional outbox (DESIGN §4): written with the change, published by the relay."""

    event_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=128)
    subject = models.CharField(max_length=128, help_text="NATS subject")
    aggregate_id = models.CharField(max_length=64)
    partition = models.PositiveIntegerField()
    envelope = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "numbering_outboxevent"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["partition", "id"],
                name="outbox_pending_by_partition",
                condition=models.Q(published_at__isnull=True),
            )
        ]
