"""Read-only admin views of the outbox and of what the consumers processed."""

from __future__ import annotations

from django.contrib import admin

from contracts.imports import EVENT_COMPLETED
from core.admin import ReadOnlyAdmin, fixed_values_filter
from core.models import OutboxEvent
from events.models import ProcessedMessage
from numbering.lifecycle import TRANSITIONS


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    matrix_read = "admin.outbox.read"
    list_display = ("id", "event_type", "aggregate_id", "partition", "created_at", "published_at", "attempts")
    list_filter = (fixed_values_filter("event_type", sorted({t.event for t in TRANSITIONS} | {EVENT_COMPLETED})),)
    search_fields = ("aggregate_id",)


@admin.register(ProcessedMessage)
class ProcessedMessageAdmin(ReadOnlyAdmin):
    matrix_read = "admin.outbox.read"
    list_display = ("message_id", "subject", "outcome", "processed_at")
    search_fields = ("message_id",)
    show_full_result_count = False
