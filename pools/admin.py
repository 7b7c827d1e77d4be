"""Admin registrations (the full commerce-ops admin builds on these)."""

from __future__ import annotations

from django.contrib import admin

from pools.models import InventoryPool, Tenant, TenantPool


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "registration_no", "segment", "status", "created_at")
    show_full_result_count = False


@admin.register(InventoryPool)
class InventoryPoolAdmin(admin.ModelAdmin):
    list_display = ("id", "code", "name", "kind", "vanity", "government_reserved")
    show_full_result_count = False


@admin.register(TenantPool)
class TenantPoolAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "quota_msisdn", "quota_short_code", "default_lease_days", "auto_renew_default")
    show_full_result_count = False
    raw_id_fields = ("tenant",)
