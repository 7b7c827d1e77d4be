"""Regulator exports (read-only here; the export pipeline writes them)."""

from __future__ import annotations

from django.contrib import admin

from exports.models import RegulatorExport
from numbering.admin_utils import ReadOnlyAdmin


@admin.register(RegulatorExport)
class RegulatorExportAdmin(ReadOnlyAdmin):
    list_display = ("period", "status", "row_count", "sha256", "retain_until", "updated_at")
    list_filter = ("status",)
    search_fields = ("period",)
