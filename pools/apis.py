"""Admin endpoints for tenants, inventory pools and tenant pools (/api/admin/v1/): reads, and
writes through pools.services (issue 16, ADR 1620)."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound

from core.actors import Actor
from core.api.views import RefDataWriteMixin, ScopedReadOnlyViewSet, get_by_uuid, int_pk, refdata_schema
from pools import services
from pools.models import InventoryPool, Tenant, TenantPool


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name", "registration_no", "segment", "status", "created_at", "updated_at"]
        read_only_fields = fields


class InventoryPoolSerializer(serializers.ModelSerializer):
    class Meta:
        model = InventoryPool
        fields = [
            "id",
            "code",
            "name",
            "kind",
            "vanity",
            "government_reserved",
            "low_watermark",
            "critical_watermark",
            "description",
            "created_at",
            "deactivated_at",
        ]
        read_only_fields = fields


class TenantPoolSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    inventory_pools = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)

    class Meta:
        model = TenantPool
        fields = [
            "id",
            "tenant_id",
            "inventory_pools",
            "quota_msisdn",
            "quota_short_code",
            "default_lease_days",
            "auto_renew_default",
            "reservation_ttl_seconds",
            "created_at",
            "updated_at",
            "deactivated_at",
        ]
        read_only_fields = fields


class TenantWriteSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(required=False, help_text="the tenant registry's id (new tenants; default: generated)")

    class Meta:
        model = Tenant
        fields = ["id", "name", "registration_no", "segment", "status"]


class InventoryPoolWriteSerializer(serializers.ModelSerializer):
    class Meta:
        model = InventoryPool
        fields = [
            "code",
            "name",
            "kind",
            "vanity",
            "government_reserved",
            "low_watermark",
            "critical_watermark",
            "description",
        ]


class TenantPoolWriteSerializer(serializers.ModelSerializer):
    tenant = serializers.PrimaryKeyRelatedField(queryset=Tenant.objects.all(), help_text="tenant id")
    inventory_pools = serializers.SlugRelatedField(
        slug_field="code", many=True, queryset=InventoryPool.objects.all(), required=False, help_text="pool codes"
    )

    class Meta:
        model = TenantPool
        fields = [
            "tenant",
            "inventory_pools",
            "quota_msisdn",
            "quota_short_code",
            "default_lease_days",
            "auto_renew_default",
            "reservation_ttl_seconds",
        ]


def _row(queryset: QuerySet[Any], pk: str, what: str) -> Any:
    row = queryset.filter(id=int_pk(pk, what)).first()
    if row is None:
        raise NotFound(f"{what} {pk[:40]!r} not found")
    return row


class TenantFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=Tenant.Status.choices)
    segment = df.ChoiceFilter(choices=Tenant.Segment.choices)
    registration_no = df.CharFilter()
    name = df.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Tenant
        fields: list[str] = []


@extend_schema(tags=["admin: tenants and pools"])
@refdata_schema("a tenant", TenantWriteSerializer, TenantSerializer)
class TenantViewSet(RefDataWriteMixin, ScopedReadOnlyViewSet):
    serializer_class = TenantSerializer
    write_serializer_class = TenantWriteSerializer
    refdata_name = "tenant"
    filterset_class = TenantFilter
    ordering = ("name", "id")
    lookup_value_regex = r"[^/]+"
    permission_keys = {
        "list": "admin.tenants.read",
        "retrieve": "admin.tenants.read",
        "create": "admin.tenants.write",
        "partial_update": "admin.tenants.write",
        "deactivate": "admin.tenants.deactivate",
    }

    def write(self, *, data: dict[str, Any], actor: Actor, instance: Any) -> Tenant:
        return services.tenant_write(data=data, actor=actor, tenant=instance)

    def deactivate_row(self, *, instance: Any, actor: Actor) -> Tenant:
        return services.tenant_deactivate(tenant=instance, actor=actor)

    def write_object(self, pk: str) -> Tenant:
        return get_by_uuid(Tenant.objects.all(), pk, "tenant")

    def render(self, row: Any) -> dict[str, Any]:
        return dict(TenantSerializer(row).data)

    def get_queryset(self) -> QuerySet[Any]:
        return Tenant.objects.all()


@extend_schema(tags=["admin: tenants and pools"])
@refdata_schema("an inventory pool", InventoryPoolWriteSerializer, InventoryPoolSerializer)
class InventoryPoolViewSet(RefDataWriteMixin, ScopedReadOnlyViewSet):
    serializer_class = InventoryPoolSerializer
    write_serializer_class = InventoryPoolWriteSerializer
    refdata_name = "inventory_pool"
    filterset_fields = ["kind", "vanity", "government_reserved"]
    ordering = ("code",)
    lookup_value_regex = r"[^/]+"
    permission_keys = {
        "list": "admin.inventory_pools.read",
        "retrieve": "admin.inventory_pools.read",
        "create": "admin.inventory_pools.write",
        "partial_update": "admin.inventory_pools.write",
        "deactivate": "admin.inventory_pools.deactivate",
    }

    def write(self, *, data: dict[str, Any], actor: Actor, instance: Any) -> InventoryPool:
        return services.inventory_pool_write(data=data, actor=actor, pool=instance)

    def deactivate_row(self, *, instance: Any, actor: Actor) -> InventoryPool:
        return services.inventory_pool_deactivate(pool=instance, actor=actor)

    def write_object(self, pk: str) -> InventoryPool:
        return _row(InventoryPool.objects.all(), pk, "inventory pool")

    def render(self, row: Any) -> dict[str, Any]:
        return dict(InventoryPoolSerializer(row).data)

    def get_queryset(self) -> QuerySet[Any]:
        return InventoryPool.objects.all()


@extend_schema(tags=["admin: tenants and pools"])
@refdata_schema("a tenant pool", TenantPoolWriteSerializer, TenantPoolSerializer)
class TenantPoolViewSet(RefDataWriteMixin, ScopedReadOnlyViewSet):
    serializer_class = TenantPoolSerializer
    write_serializer_class = TenantPoolWriteSerializer
    refdata_name = "tenant_pool"
    filterset_fields = ["tenant"]
    ordering = ("id",)
    lookup_value_regex = r"[^/]+"
    permission_keys = {
        "list": "admin.tenant_pools.read",
        "retrieve": "admin.tenant_pools.read",
        "create": "admin.tenant_pools.write",
        "partial_update": "admin.tenant_pools.write",
        "deactivate": "admin.tenant_pools.deactivate",
    }

    def write(self, *, data: dict[str, Any], actor: Actor, instance: Any) -> TenantPool:
        return services.tenant_pool_write(data=data, actor=actor, tenant_pool=instance)

    def deactivate_row(self, *, instance: Any, actor: Actor) -> TenantPool:
        return services.tenant_pool_deactivate(tenant_pool=instance, actor=actor)

    def write_object(self, pk: str) -> TenantPool:
        return _row(TenantPool.objects.all(), pk, "tenant pool")

    def render(self, row: Any) -> dict[str, Any]:
        return dict(TenantPoolSerializer(row).data)

    def get_queryset(self) -> QuerySet[Any]:
        return TenantPool.objects.prefetch_related("inventory_pools")
