"""Admin endpoints for tenants, inventory pools and tenant pools (read-only; /api/admin/v1/)."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from core.api.views import ScopedReadOnlyViewSet
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
        ]
        read_only_fields = fields


class TenantFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=Tenant.Status.choices)
    segment = df.ChoiceFilter(choices=Tenant.Segment.choices)
    registration_no = df.CharFilter()
    name = df.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Tenant
        fields: list[str] = []


@extend_schema(tags=["admin: tenants and pools"])
class TenantViewSet(ScopedReadOnlyViewSet):
    serializer_class = TenantSerializer
    filterset_class = TenantFilter
    ordering = ("name", "id")
    lookup_value_regex = r"[^/]+"
    permission_keys = {"list": "admin.tenants.read", "retrieve": "admin.tenants.read"}

    def get_queryset(self) -> QuerySet[Any]:
        return Tenant.objects.all()


@extend_schema(tags=["admin: tenants and pools"])
class InventoryPoolViewSet(ScopedReadOnlyViewSet):
    serializer_class = InventoryPoolSerializer
    filterset_fields = ["kind", "vanity", "government_reserved"]
    ordering = ("code",)
    lookup_value_regex = r"[^/]+"
    permission_keys = {"list": "admin.inventory_pools.read", "retrieve": "admin.inventory_pools.read"}

    def get_queryset(self) -> QuerySet[Any]:
        return InventoryPool.objects.all()


@extend_schema(tags=["admin: tenants and pools"])
class TenantPoolViewSet(ScopedReadOnlyViewSet):
    serializer_class = TenantPoolSerializer
    filterset_fields = ["tenant"]
    ordering = ("id",)
    lookup_value_regex = r"[^/]+"
    permission_keys = {"list": "admin.tenant_pools.read", "retrieve": "admin.tenant_pools.read"}

    def get_queryset(self) -> QuerySet[Any]:
        return TenantPool.objects.prefetch_related("inventory_pools")
