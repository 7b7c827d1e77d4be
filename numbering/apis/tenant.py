"""Tenant portal endpoints /api/tenant/v1/ (DESIGN §3.2). The tenant always comes from the
token; RLS (tenant scope) plus explicit tenant filters make other tenants' rows invisible,
so their identifiers answer 404."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core import clock
from core.api.pagination import RowPages
from core.api.schema import IDEMPOTENCY_PARAM, NUMBER_PARAM
from core.api.views import ScopedAPIView, ScopedViewSet, get_by_uuid, mutation_response, valid
from core.query_shapes import QueryShapes
from numbering import selectors, services
from numbering.apis import serializers as s
from numbering.filters import LeaseFilter, NumberSearchFilter, ReservationFilter, TenantNumberFilter
from numbering.models import Lease, Number, Reservation

# The search page, compiled once per shape of its criteria (ADR 1120, second 2026-12-03
# amendment): the SQL the ORM makes of selectors.available_page, run again with new values.
_AVAILABLE_PAGE = QueryShapes(functools.partial(selectors.available_page, columns=s.AVAILABLE_COLUMNS))


class TenantScoped:
    @property
    def tenant_id(self) -> uuid.UUID:
        tenant_id = self.principal.tenant_id  # type: ignore[attr-defined]
        assert tenant_id is not None  # the matrix only lets tenant principals in
        return tenant_id


@extend_schema(tags=["tenant: numbers"])
class TenantNumberViewSet(TenantScoped, ScopedViewSet):
    lookup_field = "number"
    lookup_value_regex = r"[^/]+"
    ordering = ("number",)
    permission_keys = {
        "list": "tenant.numbers.read",
        "retrieve": "tenant.numbers.read",
        "available": "tenant.numbers.search",
        "assign": "tenant.numbers.assign",
        "release": "tenant.numbers.release",
        "extend_reservation": "tenant.reservations.extend",
    }
    serializer_class = s.NumberSerializer

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no token
            return Number.objects.none()
        if self.action == "available":
            return selectors.number_available_for_tenant(tenant_id=self.tenant_id)
        return selectors.number_held_by_tenant(tenant_id=self.tenant_id)

    @property
    def filterset_class(self) -> Any:  # type: ignore[override]
        return NumberSearchFilter if self.action == "available" else TenantNumberFilter

    @extend_schema(summary="My numbers (reserved and assigned)")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(s.NumberSerializer(page, many=True).data)

    @extend_schema(
        summary="Search available numbers I may reserve (vanity codes with their tier's price in force)",
        responses=s.AvailableNumberSerializer(many=True),
    )
    @action(detail=False, methods=["get"])
    def available(self, request: Request) -> Response:
        # Rows, not models: a search page is read and shaped without a model or a serializer
        # per number (ADR 1120, 2026-12-03 amendment); the shape is AvailableNumberSerializer's.
        # The filterset validates the query string as DjangoFilterBackend would; its criteria
        # and the cursor's position are the values of the compiled page.
        filterset = DjangoFilterBackend().get_filterset(request, Number.objects.none(), self)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        criteria, tenant_id = filterset.criteria(), self.tenant_id
        pages = RowPages(functools.partial(_AVAILABLE_PAGE.rows, tenant_id=tenant_id, criteria=criteria))
        rows = self.paginate_queryset(pages) or []  # type: ignore[arg-type]
        # Every tier's price in force, from the cached schedule (ADR 1650, 2026-12-03 amendment).
        prices = selectors.tier_prices_shown(clock.now()) if any(row["vanity"] for row in rows) else {}
        return self.get_paginated_response(s.available_rows(rows, prices))

    @extend_schema(
        summary="One number (mine, or available)", parameters=[NUMBER_PARAM], responses=s.NumberDetailSerializer
    )
    def retrieve(self, request: Request, number: str) -> Response:
        row = selectors.number_tenant_view(number=number, tenant_id=self.tenant_id)
        return Response(s.NumberDetailSerializer(row).data)

    @extend_schema(
        summary="Assign a number I reserved (or an available one) to me",
        parameters=[NUMBER_PARAM, IDEMPOTENCY_PARAM],
        request=s.TenantAssignSerializer,
        responses=s.MutationSerializer,
    )
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, number: str) -> Any:
        data = valid(s.TenantAssignSerializer, request)
        result = services.number_assign(
            number=number,
            tenant_id=self.tenant_id,
            actor=self.actor,
            lease_days=data.get("lease_days"),
            auto_renew=data.get("auto_renew"),
            reservation_id=data.get("reservation_id"),
            expected_version=data.get("expected_version"),
            idempotency_key=self.idempotency_key,
        )
        return mutation_response(result.to_dict(), replayed=result.replayed)

    @extend_schema(
        summary="Extend my live reservation of a number (at most 24 h after the first reserve)",
        description="The new deadline is `until`, or `ttl_seconds` from now, or (neither) the tenant pool's "
        "reservation TTL from now clamped to the cap. A deadline past the cap, or not later than the current one, "
        "is refused (400 naming the field; the message names the latest deadline allowed). An expired "
        "reservation is RESERVATION_EXPIRED (409); another tenant's is WRONG_TENANT (403).",
        parameters=[NUMBER_PARAM, IDEMPOTENCY_PARAM],
        request=s.ExtendReservationSerializer,
        responses=s.MutationSerializer,
    )
    @action(detail=True, methods=["post"], url_path="extend-reservation")
    def extend_reservation(self, request: Request, number: str) -> Any:
        data = valid(s.ExtendReservationSerializer, request)
        result = services.number_extend_reservation(
            number=number,
            tenant_id=self.tenant_id,
            actor=self.actor,
            ttl_seconds=data.get("ttl_seconds"),
            until=data.get("until"),
            expected_version=data.get("expected_version"),
            idempotency_key=self.idempotency_key,
        )
        return mutation_response(result.to_dict(), replayed=result.replayed)

    @extend_schema(
        summary="Release a number I hold (reserved → available, assigned → quarantined)",
        parameters=[NUMBER_PARAM, IDEMPOTENCY_PARAM],
        request=s.ReasonSerializer,
        responses=s.MutationSerializer,
    )
    @action(detail=True, methods=["post"])
    def release(self, request: Request, number: str) -> Any:
        data = valid(s.ReasonSerializer, request)
        result = services.number_release(
            number=number,
            tenant_id=self.tenant_id,
            actor=self.actor,
            reason=data.get("reason", ""),
            expected_version=data.get("expected_version"),
            idempotency_key=self.idempotency_key,
        )
        return mutation_response(result.to_dict(), replayed=result.replayed)


@extend_schema(tags=["tenant: reservations"])
class TenantReservationViewSet(TenantScoped, ScopedViewSet):
    lookup_value_regex = r"[^/]+"
    ordering = ("-created_at", "id")
    filterset_class = ReservationFilter
    serializer_class = s.ReservationSerializer
    permission_keys = {
        "list": "tenant.reservations.read",
        "retrieve": "tenant.reservations.read",
        "create": "tenant.reservations.create",
        "cancel": "tenant.reservations.cancel",
    }

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return Reservation.objects.none()
        return selectors.reservation_list(tenant_id=self.tenant_id)

    @extend_schema(summary="My reservations")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(s.ReservationSerializer(page, many=True).data)

    @extend_schema(summary="One of my reservations", parameters=[OpenApiParameter("pk", str, OpenApiParameter.PATH)])
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.ReservationSerializer(get_by_uuid(self.get_queryset(), pk, "reservation")).data)

    @extend_schema(
        summary="Reserve one number, or n numbers matching criteria (all or nothing)",
        description="With `number`: that number. With `count` (+ kind, issuer, prefix, pattern, vanity_tier, vanity): "
        "`count` AVAILABLE numbers from my entitled pools, picked with FOR UPDATE SKIP LOCKED; if fewer can be had, "
        "nothing is reserved (409 NOT_AVAILABLE).",
        parameters=[IDEMPOTENCY_PARAM],
        request=s.ReservationCreateSerializer,
        responses={201: s.BatchMutationSerializer},
    )
    def create(self, request: Request) -> Any:
        data = valid(s.ReservationCreateSerializer, request)
        if data.get("number"):
            result = services.number_reserve(
                number=data["number"],
                tenant_id=self.tenant_id,
                actor=self.actor,
                ttl_seconds=data.get("ttl_seconds"),
                expected_version=data.get("expected_version"),
                idempotency_key=self.idempotency_key,
            )
            return mutation_response({"count": 1, "results": [result.to_dict()]}, status=201, replayed=result.replayed)
        batch = services.number_reserve_matching(
            actor=self.actor,
            tenant_id=self.tenant_id,
            count=data["count"],
            kind=data.get("kind"),
            issuer=data.get("issuer"),
            prefix=data.get("prefix"),
            pattern=data.get("pattern"),
            vanity_tier=data.get("vanity_tier"),
            vanity=data.get("vanity"),
            ttl_seconds=data.get("ttl_seconds"),
            idempotency_key=self.idempotency_key,
        )
        return mutation_response(batch.to_dict(), status=201, replayed=batch.replayed)

    @extend_schema(
        summary="Cancel one of my reservations (the number becomes available)",
        parameters=[OpenApiParameter("pk", str, OpenApiParameter.PATH), IDEMPOTENCY_PARAM],
        request=None,
        responses=s.MutationSerializer,
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Any:
        result = services.reservation_cancel(reservation_id=pk, actor=self.actor, idempotency_key=self.idempotency_key)
        return mutation_response(result.to_dict(), replayed=result.replayed)


@extend_schema(tags=["tenant: leases"])
class TenantLeaseViewSet(TenantScoped, ScopedViewSet):
    lookup_value_regex = r"[^/]+"
    ordering = ("-starts_at", "id")
    filterset_class = LeaseFilter
    serializer_class = s.LeaseSerializer
    permission_keys = {
        "list": "tenant.leases.read",
        "retrieve": "tenant.leases.read",
        "auto_renew": "tenant.leases.auto_renew",
    }

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return Lease.objects.none()
        return selectors.lease_list(tenant_id=self.tenant_id)

    @extend_schema(summary="My leases")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(s.LeaseSerializer(page, many=True).data)

    @extend_schema(summary="One of my leases", parameters=[OpenApiParameter("pk", str, OpenApiParameter.PATH)])
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.LeaseSerializer(get_by_uuid(self.get_queryset(), pk, "lease")).data)

    @extend_schema(
        summary="Turn auto-renewal of my lease on or off",
        parameters=[OpenApiParameter("pk", str, OpenApiParameter.PATH), IDEMPOTENCY_PARAM],
        request=s.AutoRenewSerializer,
        responses=s.AutoRenewResultSerializer,
    )
    @action(detail=True, methods=["post"], url_path="auto-renew")
    def auto_renew(self, request: Request, pk: str) -> Any:
        data = valid(s.AutoRenewSerializer, request)
        result = services.lease_set_auto_renew(
            lease_id=pk, auto_renew=data["auto_renew"], actor=self.actor, idempotency_key=self.idempotency_key
        )
        return mutation_response(result)


POOL_RESPONSE = inline_serializer(
    "TenantPoolUsage",
    {
        "tenant_id": serializers.UUIDField(),
        "inventory_pools": serializers.ListField(child=serializers.CharField()),
        "quotas": serializers.DictField(child=serializers.IntegerField()),
        "usage": serializers.DictField(child=serializers.DictField(child=serializers.IntegerField())),
        "default_lease_days": serializers.IntegerField(),
        "auto_renew_default": serializers.BooleanField(),
        "reservation_ttl_seconds": serializers.IntegerField(),
    },
)


@extend_schema(tags=["tenant: pool"])
class TenantPoolView(TenantScoped, ScopedAPIView):
    permission_keys = {"get": "tenant.pool.read"}

    @extend_schema(summary="My entitlement: inventory pools, quotas and usage", responses=POOL_RESPONSE)
    def get(self, request: Request) -> Response:
        return Response(selectors.tenant_pool_usage(tenant_id=self.tenant_id))
