"""Append-only, hash-chained audit trail (DESIGN §6).

The app role may only INSERT and SELECT `audit_auditevent`, and a trigger refuses UPDATE,
DELETE and TRUNCATE for everyone (migration 0002). The table is partitioned by month on
occurred_at (migration 0003, ADR 1630): partitions older than AUDIT_HOT_MONTHS go to the
WORM bucket as signed, hash-linked segments (audit.archive) and are then dropped.
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
        # A partitioned table's unique keys must contain the partition key (occurred_at);
        # (chain, seq) stays unique in practice because the chain head's row lock hands
        # out each seq once (ADR 1630).
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq", "occurred_at"], name="audit_chain_seq_at_unique")
        ]
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


class AuditArchiveSegment(models.Model):
    """One archived month (partition) on WORM storage: where it is, what it holds and how
    it links to the segment before it. Written after the upload verified, before the drop."""

    partition = models.CharField(max_length=63, unique=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    object_key = models.CharField(max_length=512)
    version_id = models.CharField(max_length=256)
    manifest_key = models.CharField(max_length=512)
    manifest_version_id = models.CharField(max_length=256)
    sha256 = models.CharField(max_length=64)  # of the segment (JSON lines)
    manifest_sha256 = models.CharField(max_length=64)
    prev_manifest_sha256 = models.CharField(max_length=64)  # the hash link to the previous segment
    events = models.BigIntegerField()
    chains = models.JSONField()  # {chain: {first_seq, first_prev_hash, last_seq, last_hash, events}}
    key_id = models.CharField(max_length=200)
    signature = models.TextField()
    retain_until = models.DateTimeField()
    archived_at = models.DateTimeField()
    dropped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["period_start"]

    def __str__(self) -> str:
        return f"{self.partition} ({self.events} events)"
