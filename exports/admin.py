"""Admin for regulator exports: list, trigger, download, verify; plus the ad-hoc
inventory CSV for staff. Thin adapters over exports.services (the run),
exports.selectors (reads), exports.verify and exports.inventory_csv."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core import authz, errors
from core.actors import Actor
from core.periods import previous_period
from exports.inventory_csv import INVENTORY_FILTERS, inventory_csv_filename, inventory_csv_rows
from exports.models import RegulatorExport
from exports.selectors import regulator_export_open
from exports.services import ExportFailed, regulator_export_run
from exports.verify import regulator_export_verify


def _require(request: HttpRequest, key: str) -> Actor:
    """The staff user as actor, if core.authz.MATRIX lets their roles do `key` (as over REST)."""
    user_roles = authz.roles_of(request.user)
    if not authz.allowed(key, user_roles):
        raise PermissionDenied(f"needs one of the roles {', '.join(sorted(authz.MATRIX[key]))}")
    return authz.staff_actor(request.user)


@admin.register(RegulatorExport)
class RegulatorExportAdmin(admin.ModelAdmin):
    list_display = ("period", "status", "row_count", "attempts", "uploaded_at", "retain_until", "key_id", "downloads")
    list_filter = ("status",)
    search_fields = ("period",)
    show_full_result_count = False
    actions = ["verify_selected"]
    change_list_template = "admin/exports/regulatorexport/change_list.html"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return authz.allowed("admin.exports.read", authz.roles_of(request.user)) or super().has_view_permission(
            request, obj
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(authz.roles_of(request.user)) or super().has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="download")
    def downloads(self, obj: RegulatorExport) -> str:
        from django.utils.html import format_html

        if obj.status != RegulatorExport.Status.UPLOADED:
            return "-"
        csv_url = reverse("admin:exports_regulatorexport_download", args=[obj.period, "csv"])
        manifest_url = reverse("admin:exports_regulatorexport_download", args=[obj.period, "manifest"])
        return format_html('<a href="{}">CSV</a> · <a href="{}">manifest</a>', csv_url, manifest_url)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("trigger/", wrap(self.trigger_view), name="exports_regulatorexport_trigger"),
            path(
                "<str:period>/download/<str:which>/",
                wrap(self.download_view),
                name="exports_regulatorexport_download",
            ),
            path("inventory/", wrap(self.inventory_view), name="exports_inventory_csv"),
            *super().get_urls(),
        ]

    def trigger_view(self, request: HttpRequest) -> HttpResponse:
        actor = _require(request, "admin.exports.write")
        if request.method == "POST":
            period = request.POST.get("period", "").strip()
            try:
                outcome = regulator_export_run(period=period, actor=actor)
            except errors.DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            except ExportFailed as exc:
                self.message_user(request, f"{exc} — recorded as FAILED; trigger again to retry", messages.ERROR)
            else:
                self.message_user(request, outcome.message, messages.SUCCESS if outcome.uploaded else messages.INFO)
                return HttpResponseRedirect(reverse("admin:exports_regulatorexport_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Run the monthly regulator export",
            "default_period": request.POST.get("period") or previous_period().name,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/exports/trigger.html", context)

    def download_view(self, request: HttpRequest, period: str, which: str) -> HttpResponseBase:
        _require(request, "admin.exports.read")
        try:
            chunks, name, content_type = regulator_export_open(period, which)
        except errors.DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:exports_regulatorexport_changelist"))
        response = StreamingHttpResponse(chunks, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @admin.action(description="Verify hash, signature and lock of the selected exports")
    def verify_selected(self, request: HttpRequest, queryset: QuerySet[RegulatorExport]) -> None:
        _require(request, "admin.exports.verify")
        for export in queryset:
            result = regulator_export_verify(export.period)
            if result.ok:
                self.message_user(request, f"{export.period}: verified ({'; '.join(result.checks)})", messages.SUCCESS)
            else:
                self.message_user(request, f"{export.period}: {'; '.join(result.problems)}", messages.ERROR)

    def inventory_view(self, request: HttpRequest) -> HttpResponseBase:
        actor = _require(request, "admin.exports.inventory")
        filters = {k: request.GET[k] for k in INVENTORY_FILTERS if request.GET.get(k, "").strip()}
        if request.GET.get("download"):
            try:
                lines = inventory_csv_rows(filters, actor=actor)
            except errors.DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
                response["Content-Disposition"] = f'attachment; filename="{inventory_csv_filename()}"'
                return response
        context = {
            **self.admin_site.each_context(request),
            "title": "Inventory CSV export",
            "filters": [(name, request.GET.get(name, "")) for name in INVENTORY_FILTERS],
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/exports/inventory.html", context)
