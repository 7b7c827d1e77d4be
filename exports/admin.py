"""Admin registrations (the full commerce-ops admin builds on these)."""

from __future__ import annotations

from django.contrib import admin

from exports.models import RegulatorExport


@admin.register(RegulatorExport)
class RegulatorExportAdmin(admin.ModelAdmin):
    list_display = ("id", "period", "status", "row_count", "sha256", "signature")
    show_full_result_count = False
