"""Admin endpoints for numbers, leases and quarantine policies (/api/admin/v1/, staff roles)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core import errors
from core.api.schema import IDEMPOTENCY_PARAM, NUMBER_PARAM
from core.api.views import ScopedViewSet, get_by_uuid, mutation_response, valid
from numbering import selectors, services
from numbering.apis import serializers as s
from numbering.filters import AdminLeaseFilter, AdminNumberFilter
from numbering.models import QuarantinePolicy

PK_PARAM = OpenApiParameter("pk", str, OpenApiParameter.PATH)


def _number_action(summary: str, request_serializer: Any) -> Any:
    return extend_schema(
        summary=summary,
        parameters=[NUMBER_PARAM, IDEMPOTENCY_PARAM],
        request=request_serializer,
        responses=s.MutationSerializer,
    )


@extend_schema(tags=["admin: numbers"])
class AdminNumberViewSet(ScopedViewSet):
    lookup_field = "number"
    lookup_value_regex = r"[^/]+"
    ordering = ("number",)
    filterset_class = AdminNumberFilter
    serializer_class = s.AdminNumberSerializer
    permission_keys = {
        "list": "admin.numbers.read",
        "retrieve": "admin.numbers.read",
        **{a: f"admin.numbers.{a}" for a in ("reserve", "assign", "release", "recall", "retire", "reinstate")},
    }

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.number_list().select_related("tenant")

    @extend_schema(summary="Search numbers (state, kind, issuer, vanity tier, tenant, pool, prefix, pattern)")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(s.AdminNumberSerializer(page, many=True).data)

    @extend_schema(
        summary="A number with its lease, reservations, leases and audit history",
        parameters=[NUMBER_PARAM],
        responses=s.AdminNumberDetailSerializer,
    )
    def retrieve(self, request: Request, number: str) -> Response:
        row = selectors.number_get(number=number)
        history = selectors.number_history(number=row)
        return Response(s.AdminNumberDetailSerializer(row, context={"history": history}).data)

    @_number_action("Reserve a number for a tenant", s.AdminReserveSerializer)
    @action(detail=True, methods=["post"])
    def reserve(self, request: Request, number: str) -> Any:
        d = valid(s.AdminReserveSerializer, request)
        r = services.number_reserve(
            number=number,
            tenant_id=d["tenant_id"],
            actor=self.actor,
            ttl_seconds=d.get("ttl_seconds"),
            expected_version=d.get("expected_version"),
            idempotency_key=self.idempotency_key,
        )
        return mutation_response(r.to_dict(), replayed=r.replayed)

    @_number_action("Assign a number to a tenant (lease)", s.AdminAssignSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, number: str) -> Any:
        d = valid(s.AdminAssignSerializer, request)
        r = services.number_assign(
            number=number,
            tenant_id=d["tenant_id"],
            actor=self.actor,
            lease_days=d.get("lease_days"),
            auto_renew=d.get("auto_renew"),
            reservation_id=d.get("reservation_id"),
            expected_version=d.get("expected_version"),
            idempotency_key=self.idempotency_key,
        )
        return mutation_response(r.to_dict(), replayed=r.replayed)

    @_number_action("Release a number (reason ASSIGNED_IN_ERROR = no cool-off)", s.ReasonSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, number: str) -> Any:
        d = valid(s.ReasonSerializer, request)
        r = services.number_release(
            number=number,
            actor=self.actor,
            reason=d.get("reason", ""),
            expected_version=d.get("expected_version"),
            idempotency_key=self.idempotency_key,
        )
        return mutation_response(r.to_dict(), replayed=r.replayed)

    @_number_action("Recall a number from its holder", s.RecallSerializer)
    @action(detail=True, methods=["post"])
    def recall(self, request: Request, number: str) -> Any:
        d = valid(s.RecallSerializer, request)
        r = services.number_recall(
            number=number,
            actor=self.actor,
            reason=d.get("reason", ""),
            compliance=d.get("compliance", False),
            expected_version=d.get("expected_version"),
            idempotency_key=self.idempotency_key,
        )
        return mutation_response(r.to_dict(), replayed=r.replayed)

    @_number_action("Retire a number (available or quarantined)", s.ReasonSerializer)
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, number: str) -> Any:
        d = valid(s.ReasonSerializer, request)
        r = services.number_retire(
            number=number,
            actor=self.actor,
            reason=d.get("reason", ""),
            expected_version=d.get("expected_version"),
            idempotency_key=self.idempotency_key,
        )
        return mutation_response(r.to_dict(), replayed=r.replayed)

    @_number_action("Reinstate a retired number (re-enters through quarantine)", s.ReasonSerializer)
    @action(detail=True, methods=["post"])
    def reinstate(self, request: Request, number: str) -> Any:
        d = valid(s.ReasonSerializer, request)
        r = services.number_reinstate(
            number=number,
            actor=self.actor,
            reason=d.get("reason", ""),
            expected_version=d.get("expected_version"),
            idempotency_key=self.idempotency_key,
        )
        return mutation_response(r.to_dict(), replayed=r.replayed)


@extend_schema(tags=["admin: leases"])
class AdminLeaseViewSet(ScopedViewSet):
    lookup_value_regex = r"[^/]+"
    ordering = ("-starts_at", "id")
    filterset_class = AdminLeaseFilter
    serializer_class = s.LeaseSerializer
    permission_keys = {
        "list": "admin.leases.read",
        "retrieve": "admin.leases.read",
        "renew": "admin.leases.renew",
        "auto_renew": "admin.leases.auto_renew",
    }

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.lease_list()

    @extend_schema(summary="Leases (status, tenant, auto_renew, expiry window, number)")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(s.LeaseSerializer(page, many=True).data)

    @extend_schema(summary="One lease", parameters=[PK_PARAM])
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.LeaseSerializer(get_by_uuid(self.get_queryset(), pk, "lease")).data)

    @extend_schema(
        summary="Renew the lease by one term",
        parameters=[PK_PARAM, IDEMPOTENCY_PARAM],
        request=None,
        responses=s.MutationSerializer,
    )
    @action(detail=True, methods=["post"])
    def renew(self, request: Request, pk: str) -> Any:
        r = services.lease_renew(lease_id=pk, actor=self.actor, idempotency_key=self.idempotency_key)
        return mutation_response(r.to_dict(), replayed=r.replayed)

    @extend_schema(
        summary="Turn auto-renewal on or off",
        parameters=[PK_PARAM, IDEMPOTENCY_PARAM],
        request=s.AutoRenewSerializer,
        responses=s.AutoRenewResultSerializer,
    )
    @action(detail=True, methods=["post"], url_path="auto-renew")
    def auto_renew(self, request: Request, pk: str) -> Any:
        d = valid(s.AutoRenewSerializer, request)
        return mutation_response(
            services.lease_set_auto_renew(
                lease_id=pk, auto_renew=d["auto_renew"], actor=self.actor, idempotency_key=self.idempotency_key
            )
        )


@extend_schema(tags=["admin: quarantine policies"])
class QuarantinePolicyViewSet(ScopedViewSet):
    lookup_field = "case"
    lookup_value_regex = r"[^/]+"
    ordering = ("case",)
    pagination_class = None
    serializer_class = s.QuarantinePolicySerializer
    permission_keys = {
        "list": "admin.quarantine_policies.read",
        "retrieve": "admin.quarantine_policies.read",
        "partial_update": "admin.quarantine_policies.write",
    }

    def get_queryset(self) -> QuerySet[Any]:
        return QuarantinePolicy.objects.order_by("case")

    @extend_schema(summary="Quarantine cool-offs per case")
    def list(self, request: Request) -> Response:
        return Response(s.QuarantinePolicySerializer(self.get_queryset(), many=True).data)

    def _get(self, case: str) -> QuarantinePolicy:
        policy = self.get_queryset().filter(case=case).first() if case in QuarantinePolicy.Case.values else None
        if policy is None:
            raise errors.NotFound(
                f"quarantine policy {case[:40]!r} not found (cases: {', '.join(QuarantinePolicy.Case.values)})",
                field="case",
            )
        return policy

    @extend_schema(summary="One quarantine policy")
    def retrieve(self, request: Request, case: str) -> Response:
        return Response(s.QuarantinePolicySerializer(self._get(case)).data)

    @extend_schema(
        summary="Change a cool-off (approved_by/approved_at required; audited)",
        request=s.QuarantinePolicyUpdateSerializer,
    )
    def partial_update(self, request: Request, case: str) -> Response:
        self._get(case)
        d = valid(s.QuarantinePolicyUpdateSerializer, request)
        policy = services.quarantine_policy_update(
            case=case,
            actor=self.actor,
            approved_by=d["approved_by"],
            approved_at=d["approved_at"],
            days=d.get("days"),
            description=d.get("description"),
        )
        return Response(s.QuarantinePolicySerializer(policy).data)
