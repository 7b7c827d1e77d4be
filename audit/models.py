"""Append-only, hash-chained audit trail (DESIGN §6).

The app role may only INSERT and SELECT `audit_auditevent`, and a trigger refuses UPDATE,
DELETE and TRUNCATE for everyone (migration 0002).
"""

from __future__ import annotations

from django.db import models

GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    chain = models.PositiveSmallIntegerField()
    seq = models.BigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=128)
    tenant_id = models.UUIDField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_unique")]
        indexes = [
            models.Index(fields=["object_type", "object_id", "occurred_at"], name="audit_object"),
            models.Index(fields=["tenant_id", "occurred_at"], name="audit_tenant"),
            models.Index(fields=["occurred_at"], name="audit_occurred_at"),
        ]

    def __str__(self) -> str:
        return f"{self.chain}:{self.seq} {self.action} {self.object_type}"


class ChainHead(models.Model):
    """The last (seq, hash) of each chain; its row lock serialises appends to the chain."""

    chain = models.PositiveSmallIntegerField(primary_key=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    updated_at = models.DateTimeField(auto_now=True)
