"""Admin registrations (the full commerce-ops admin builds on these)."""

from __future__ import annotations

from django.contrib import admin

from numbering.models import Lease, Number, OutboxEvent, QuarantinePolicy, Reservation


class ReadOnlyAdmin(admin.ModelAdmin):
    """State changes go through numbering.services (CAS, audit, outbox), never a form save."""

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Number)
class NumberAdmin(ReadOnlyAdmin):
    list_display = ("id", "number", "kind", "issuer", "block", "pool")
    show_full_result_count = False
    raw_id_fields = ("issuer", "block", "pool", "tenant", "last_tenant")


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("id", "number", "tenant", "status", "created_at", "expires_at")
    show_full_result_count = False
    raw_id_fields = ("number", "tenant")


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = ("id", "number", "tenant", "reservation", "status", "starts_at")
    show_full_result_count = False
    raw_id_fields = ("number", "tenant", "reservation")


@admin.register(QuarantinePolicy)
class QuarantinePolicyAdmin(admin.ModelAdmin):
    list_display = ("id", "case", "days", "description", "approved_by", "approved_at")
    show_full_result_count = False


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_id", "event_type", "subject", "aggregate_id", "partition")
    show_full_result_count = False
