"""Admin endpoints for the audit trail: events list and chain verification (/api/admin/v1/audit/)."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditEvent
from audit.services import audit_verify_chains
from core.api.views import ScopedAPIView, ScopedReadOnlyViewSet
from core.formats import INPUT_HELP, normalize_number


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "chain",
            "seq",
            "prev_hash",
            "hash",
            "occurred_at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "tenant_id",
            "request_id",
            "before",
            "after",
        ]
        read_only_fields = fields


class AuditEventFilter(df.FilterSet):
    object_type = df.CharFilter()
    object_id = df.CharFilter()
    number = df.CharFilter(method="filter_number", help_text=f"events of one number: {INPUT_HELP}")
    action = df.CharFilter()
    actor = df.CharFilter()
    tenant = df.UUIDFilter(field_name="tenant_id")
    request_id = df.CharFilter()
    occurred_after = df.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = df.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def filter_number(self, queryset: QuerySet[AuditEvent], name: str, value: Any) -> QuerySet[AuditEvent]:
        return queryset.filter(object_type="number", object_id=normalize_number(value)) if value else queryset


@extend_schema(tags=["admin: audit"])
class AuditEventViewSet(ScopedReadOnlyViewSet):
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    ordering = ("-id",)
    lookup_value_regex = r"[^/]+"
    permission_keys = {"list": "admin.audit.read", "retrieve": "admin.audit.read"}

    def get_queryset(self) -> QuerySet[Any]:
        return AuditEvent.objects.all()


VERIFY_RESPONSE = inline_serializer(
    "AuditVerifyResult",
    {
        "ok": serializers.BooleanField(),
        "verified": serializers.IntegerField(),
        "chains": serializers.IntegerField(),
        "breaks": serializers.ListField(
            child=inline_serializer(
                "AuditChainBreak",
                {
                    "chain": serializers.IntegerField(),
                    "seq": serializers.IntegerField(),
                    "reason": serializers.CharField(),
                },
            )
        ),
    },
)


@extend_schema(tags=["admin: audit"])
class AuditVerifyView(ScopedAPIView):
    permission_keys = {"post": "admin.audit.verify"}

    @extend_schema(summary="Recompute every audit chain now and report breaks", request=None, responses=VERIFY_RESPONSE)
    def post(self, request: Request) -> Response:
        result = audit_verify_chains()
        return Response(
            {
                "ok": result.ok,
                "verified": result.verified,
                "chains": result.chains,
                "breaks": [{"chain": b.chain, "seq": b.seq, "reason": b.reason} for b in result.breaks],
            }
        )
