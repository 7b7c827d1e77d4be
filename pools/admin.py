"""Admin for tenants (a local mirror), inventory pools and tenants' entitlements."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from core.admin import BigTableAdmin, MatrixAdmin, MatrixPermissions, ReadOnlyAdmin
from pools import services
from pools.models import InventoryPool, PoolWatermarkState, Tenant, TenantPool


class TenantForm(forms.ModelForm):
    """The service's status rule as a form error: staff move ACTIVE↔SUSPENDED only."""

    class Meta:
        model = Tenant
        fields = ("name", "registration_no", "segment", "status")

    def clean_status(self) -> str:
        new = self.cleaned_data["status"]
        before = None
        if not self.instance._state.adding:
            before = Tenant.objects.filter(pk=self.instance.pk).values_list("status", flat=True).first()
        problem = services.tenant_status_problem(before, new)
        if problem:
            raise forms.ValidationError(problem)
        return str(new)


@admin.register(Tenant)
class TenantAdmin(MatrixPermissions, BigTableAdmin):
    form = TenantForm
    matrix_read, matrix_write = "admin.tenants.read", "admin.tenants.write"
    save_service = services.tenant_save
    matrix_deactivate = "admin.tenants.deactivate"

    @staticmethod
    def deactivate_service(row: Tenant, *, actor: Any) -> Any:
        return services.tenant_deactivate(tenant=row, actor=actor)

    list_display = ("name", "registration_no", "segment", "status", "created_at")
    list_filter = ("segment", "status")
    search_fields = ("name", "registration_no")


@admin.register(InventoryPool)
class InventoryPoolAdmin(MatrixAdmin):
    matrix_read, matrix_write = "admin.inventory_pools.read", "admin.inventory_pools.write"
    save_service = services.inventory_pool_save
    matrix_deactivate = "admin.inventory_pools.deactivate"

    @staticmethod
    def deactivate_service(row: InventoryPool, *, actor: Any) -> Any:
        return services.inventory_pool_deactivate(pool=row, actor=actor)

    list_display = (
        "code",
        "name",
        "kind",
        "vanity",
        "government_reserved",
        "low_watermark",
        "critical_watermark",
        "deactivated_at",
    )
    list_filter = ("kind", "vanity", "government_reserved")
    search_fields = ("code", "name")


@admin.register(TenantPool)
class TenantPoolAdmin(MatrixPermissions, BigTableAdmin):
    matrix_read, matrix_write = "admin.tenant_pools.read", "admin.tenant_pools.write"
    save_service = services.tenant_pool_save
    matrix_deactivate = "admin.tenant_pools.deactivate"

    @staticmethod
    def deactivate_service(row: TenantPool, *, actor: Any) -> Any:
        return services.tenant_pool_deactivate(tenant_pool=row, actor=actor)

    list_display = (
        "tenant",
        "quota_msisdn",
        "quota_short_code",
        "default_lease_days",
        "auto_renew_default",
        "reservation_ttl_seconds",
        "deactivated_at",
    )
    list_select_related = ("tenant",)
    autocomplete_fields = ("tenant",)
    filter_horizontal = ("inventory_pools",)

    def formfield_for_manytomany(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if db_field.name == "inventory_pools":  # a deactivated pool entitles no one (ADR 1620)
            kwargs["queryset"] = InventoryPool.objects.filter(deactivated_at__isnull=True)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    search_fields = ("tenant__name", "tenant__registration_no")


@admin.register(PoolWatermarkState)
class PoolWatermarkStateAdmin(ReadOnlyAdmin):
    matrix_read = "admin.inventory_pools.read"
    """The last watermark level per pool (set by the pool-watermarks job)."""

    list_display = ("pool", "level", "available", "changed_at", "checked_at")
    list_select_related = ("pool",)
