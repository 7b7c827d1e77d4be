"""Admin endpoints for issuers, contracts and number blocks (/api/admin/v1/)."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request

from config.api.views import ScopedReadOnlyViewSet, int_pk, mutation_response
from contracts import services
from contracts.models import Contract, Issuer, NumberBlock
from numbering.apis.tenant import IDEMPOTENCY_PARAM, valid


class IssuerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Issuer
        fields = ["id", "code", "name", "kind", "msisdn_prefixes", "created_at"]
        read_only_fields = fields


class ContractSerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(source="issuer.code", read_only=True)

    class Meta:
        model = Contract
        fields = [
            "id",
            "reference",
            "issuer",
            "kind",
            "status",
            "starts_on",
            "ends_on",
            "agreed_prefixes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BlockSerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(source="issuer.code", read_only=True)
    contract = serializers.CharField(source="contract.reference", read_only=True, allow_null=True, default=None)

    class Meta:
        model = NumberBlock
        fields = [
            "id",
            "name",
            "issuer",
            "contract",
            "kind",
            "range_start",
            "range_end",
            "inventory_import",
            "created_at",
        ]
        read_only_fields = fields


class ContractActionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class ContractSnapshotSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    issuer = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    starts_on = serializers.DateField(allow_null=True)
    ends_on = serializers.DateField(allow_null=True)
    agreed_prefixes = serializers.ListField(child=serializers.CharField())


class ContractActionResultSerializer(serializers.Serializer):
    contract = ContractSnapshotSerializer()
    reason = serializers.CharField(allow_blank=True)


class ContractFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=Contract.Status.choices)
    kind = df.ChoiceFilter(choices=Contract.Kind.choices)
    issuer = df.CharFilter(field_name="issuer__code", lookup_expr="iexact")

    class Meta:
        model = Contract
        fields: list[str] = []


class BlockFilter(df.FilterSet):
    kind = df.ChoiceFilter(choices=NumberBlock.Kind.choices)
    issuer = df.CharFilter(field_name="issuer__code", lookup_expr="iexact")
    contract = df.CharFilter(field_name="contract__reference")

    class Meta:
        model = NumberBlock
        fields: list[str] = []


@extend_schema(tags=["admin: issuers and contracts"])
class IssuerViewSet(ScopedReadOnlyViewSet):
    serializer_class = IssuerSerializer
    filterset_fields = ["kind"]
    ordering = ("code",)
    lookup_value_regex = r"[^/]+"
    permission_keys = {"list": "admin.issuers.read", "retrieve": "admin.issuers.read"}

    def get_queryset(self) -> QuerySet[Any]:
        return Issuer.objects.all()


PK = OpenApiParameter("id", int, OpenApiParameter.PATH)


@extend_schema(tags=["admin: issuers and contracts"])
class ContractViewSet(ScopedReadOnlyViewSet):
    serializer_class = ContractSerializer
    filterset_class = ContractFilter
    ordering = ("reference",)
    lookup_value_regex = r"[^/]+"
    permission_keys = {
        "list": "admin.contracts.read",
        "retrieve": "admin.contracts.read",
        "suspend": "admin.contracts.suspend",
        "terminate": "admin.contracts.terminate",
    }

    def get_queryset(self) -> QuerySet[Any]:
        return Contract.objects.select_related("issuer")

    @extend_schema(
        summary="Suspend an ACTIVE contract (audited)",
        parameters=[IDEMPOTENCY_PARAM],
        request=ContractActionSerializer,
        responses=ContractActionResultSerializer,
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str) -> Any:
        d = valid(ContractActionSerializer, request)
        return mutation_response(
            services.contract_suspend(
                contract_id=int_pk(pk, "contract"),
                actor=self.actor,
                reason=d["reason"],
                idempotency_key=self.idempotency_key,
            )
        )

    @extend_schema(
        summary="Terminate a contract (audited)",
        parameters=[IDEMPOTENCY_PARAM],
        request=ContractActionSerializer,
        responses=ContractActionResultSerializer,
    )
    @action(detail=True, methods=["post"])
    def terminate(self, request: Request, pk: str) -> Any:
        d = valid(ContractActionSerializer, request)
        return mutation_response(
            services.contract_terminate(
                contract_id=int_pk(pk, "contract"),
                actor=self.actor,
                reason=d["reason"],
                idempotency_key=self.idempotency_key,
            )
        )


@extend_schema(tags=["admin: issuers and contracts"])
class BlockViewSet(ScopedReadOnlyViewSet):
    serializer_class = BlockSerializer
    filterset_class = BlockFilter
    ordering = ("id",)
    lookup_value_regex = r"[^/]+"
    permission_keys = {"list": "admin.blocks.read", "retrieve": "admin.blocks.read"}

    def get_queryset(self) -> QuerySet[Any]:
        return NumberBlock.objects.select_related("issuer", "contract")
