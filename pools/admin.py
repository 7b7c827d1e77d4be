"""Admin for tenants (a local mirror), inventory pools and tenants' entitlements."""

from __future__ import annotations

from django.contrib import admin

from core.admin import BigTableAdmin, ReadOnlyAdmin
from pools.models import InventoryPool, PoolWatermarkState, Tenant, TenantPool


@admin.register(Tenant)
class TenantAdmin(BigTableAdmin):
    list_display = ("name", "registration_no", "segment", "status", "created_at")
    list_filter = ("segment", "status")
    search_fields = ("name", "registration_no")


@admin.register(InventoryPool)
class InventoryPoolAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "vanity", "government_reserved", "low_watermark", "critical_watermark")
    list_filter = ("kind", "vanity", "government_reserved")
    search_fields = ("code", "name")


@admin.register(TenantPool)
class TenantPoolAdmin(BigTableAdmin):
    list_display = (
        "tenant",
        "quota_msisdn",
        "quota_short_code",
        "default_lease_days",
        "auto_renew_default",
        "reservation_ttl_seconds",
    )
    list_select_related = ("tenant",)
    autocomplete_fields = ("tenant",)
    filter_horizontal = ("inventory_pools",)
    search_fields = ("tenant__name", "tenant__registration_no")


@admin.register(PoolWatermarkState)
class PoolWatermarkStateAdmin(ReadOnlyAdmin):
    """The last watermark level per pool (set by the pool-watermarks job)."""

    list_display = ("pool", "level", "available", "changed_at", "checked_at")
    list_select_related = ("pool",)
