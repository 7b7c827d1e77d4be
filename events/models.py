"""Consumed-event bookkeeping (the outbox table itself is the kernel's: core.models)."""

from __future__ import annotations

from django.db import models


class ProcessedMessage(models.Model):
    """A consumed event whose effect is committed: a redelivery of the same id does nothing."""

    message_id = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=200)
    stream_sequence = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=32, help_text="what the consumer did: applied / ignored")
    detail = models.JSONField(default=dict, blank=True)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "numbering_processedmessage"
        ordering = ["-processed_at"]
