"""The audit trail in the admin: read-only, searchable by object, with a chain verify button."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse

from audit.models import AuditArchiveSegment, AuditEvent, ChainHead
from audit.services import audit_verify_chains, audited_actions, audited_object_types
from core.admin import ReadOnlyAdmin, fixed_values_filter
from core.errors import ValidationError
from core.formats import normalize_number


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    matrix_read = "admin.audit.read"
    list_display = ("occurred_at", "actor", "action", "object_type", "object_id", "tenant_id", "chain", "seq")
    list_filter = (
        fixed_values_filter("object_type", audited_object_types),
        fixed_values_filter("action", audited_actions),
    )
    search_fields = ("=object_id", "=actor")
    search_help_text = (
        "Exact object id (a number in any format people type — 079 123 4567, ۰۷۹۱۲۳۴۵۶۷ — import:<id>, "
        "key:<fingerprint>) or actor (user:<name>)."
    )

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[AuditEvent], search_term: str) -> Any:
        # A number is recorded under its stored (ASCII E.164) form: read what staff typed first.
        try:
            search_term = normalize_number(search_term)
        except ValidationError:
            pass
        return super().get_search_results(request, queryset, search_term)

    change_list_template = "admin/audit/auditevent/change_list.html"

    def get_urls(self) -> list[Any]:
        return [
            path("verify/", self.admin_site.admin_view(self.verify_view), name="audit_auditevent_verify"),
            *super().get_urls(),
        ]

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        result = audit_verify_chains()
        if result.ok:
            messages.success(request, f"Audit chain OK: {result.verified} events verified in {result.chains} chain(s).")
        for b in result.breaks:
            messages.error(request, f"Audit chain BROKEN: chain {b.chain} at seq {b.seq}: {b.reason}")
        return HttpResponseRedirect(reverse("admin:audit_auditevent_changelist"))


@admin.register(ChainHead)
class ChainHeadAdmin(ReadOnlyAdmin):
    matrix_read = "admin.audit.read"
    list_display = ("chain", "seq", "hash", "updated_at")


@admin.register(AuditArchiveSegment)
class AuditArchiveSegmentAdmin(ReadOnlyAdmin):
    """The archived months (ADR 1630): where each segment is and how it links; read-only."""

    matrix_read = "admin.audit.read"
    list_display = ("partition", "period_start", "period_end", "events", "archived_at", "dropped_at", "retain_until")
    readonly_fields = ("chains", "signature", "sha256", "manifest_sha256", "prev_manifest_sha256")
