"""Admin endpoints for numbers, leases, quarantine policies and vanity tier prices
(/api/admin/v1/, staff roles)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core import clock, errors
from core.api.schema import IDEMPOTENCY_PARAM, NUMBER_PARAM
from core.api.views import ScopedViewSet, get_by_uuid, idempotent_mutation, mutation_response, valid
from numbering import selectors, services
from numbering.apis import serializers as s
from numbering.filters import AdminLeaseFilter, AdminNumberFilter
from numbering.models import QuarantinePolicy, TierPriceChange

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


# --- vanity tiers and their prices (issue 16 part 6, ADR 1650) ---------------------------------


def _tier_context() -> dict[str, Any]:
    pending = selectors.tier_price_change_list().filter(status=TierPriceChange.Status.PENDING)
    return {"prices": selectors.tier_prices_in_force(clock.now()), "pending": {c.tier_id: c for c in pending}}


@extend_schema(tags=["admin: vanity tiers"])
class VanityTierViewSet(ScopedViewSet):
    lookup_field = "code"
    lookup_value_regex = r"[^/]+"
    pagination_class = None
    serializer_class = s.VanityTierSerializer
    permission_keys = {"list": "admin.vanity_tiers.read", "retrieve": "admin.vanity_tiers.read"}

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.vanity_tier_list().order_by("code")

    @extend_schema(summary="Vanity tiers with the price in force now and any pending change")
    def list(self, request: Request) -> Response:
        return Response(s.VanityTierSerializer(self.get_queryset(), many=True, context=_tier_context()).data)

    @extend_schema(summary="One vanity tier")
    def retrieve(self, request: Request, code: str) -> Response:
        tier = self.get_queryset().filter(code=code[:16]).first()
        if tier is None:
            raise errors.NotFound(f"vanity tier {code[:16]!r} not found", field="code")
        return Response(s.VanityTierSerializer(tier, context=_tier_context()).data)


def _change_body(change: TierPriceChange) -> dict[str, Any]:
    return dict(s.TierPriceChangeSerializer(change).data)


@extend_schema(tags=["admin: vanity tiers"])
class TierPriceChangeViewSet(ScopedViewSet):
    """Four eyes (ADR 1650): commerce proposes a tier price; a second, different staff user
    approves or rejects it. Approved changes are the tiers' price history."""

    ordering = ("-id",)
    lookup_value_regex = r"[^/]+"  # any id reaches _get and answers a problem+json 404
    serializer_class = s.TierPriceChangeSerializer
    permission_keys = {
        "list": "admin.vanity_tiers.read",
        "retrieve": "admin.vanity_tiers.read",
        "create": "admin.vanity_tiers.propose",
        "approve": "admin.vanity_tiers.approve",
        "reject": "admin.vanity_tiers.approve",
    }

    def get_queryset(self) -> QuerySet[Any]:
        rows = selectors.tier_price_change_list().order_by("-id")
        tier = self.request.query_params.get("tier") if getattr(self, "request", None) else None
        status = self.request.query_params.get("status") if getattr(self, "request", None) else None
        if tier:
            rows = rows.filter(tier_id=tier[:16])
        if status:
            rows = rows.filter(status=status[:16].upper())
        return rows

    def _get(self, pk: str) -> TierPriceChange:
        change = self.get_queryset().filter(id=int(pk)).first() if pk.isdigit() and len(pk) < 19 else None
        if change is None:
            raise errors.NotFound(f"tier price change {pk[:40]!r} not found", field="id")
        return change

    @extend_schema(
        summary="Price changes, newest first",
        parameters=[
            OpenApiParameter("tier", str, description="tier code, e.g. GOLD"),
            OpenApiParameter("status", str, enum=TierPriceChange.Status.values),
        ],
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.TierPriceChangeSerializer(page, many=True).data)

    @extend_schema(summary="One price change", parameters=[PK_PARAM])
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_change_body(self._get(pk)))

    @extend_schema(
        summary="Propose a tier price (not in force until a second user approves it; audited)",
        parameters=[IDEMPOTENCY_PARAM],
        request=s.TierPriceProposeSerializer,
        responses={201: s.TierPriceChangeSerializer},
    )
    def create(self, request: Request) -> Any:
        d = valid(s.TierPriceProposeSerializer, request)
        effective = d.get("effective_from")
        fingerprint = {
            "action": "tier_price_propose",
            "tier": d["tier"],
            "monthly_price": str(d["monthly_price"]),
            "setup_fee": str(d["setup_fee"]),
            "effective_from": effective.isoformat() if effective else None,
            "reason": d.get("reason", ""),
        }

        def propose() -> dict[str, Any]:
            return _change_body(
                services.tier_price_propose(
                    tier_code=d["tier"],
                    monthly_price=d["monthly_price"],
                    setup_fee=d["setup_fee"],
                    effective_from=effective,
                    reason=d.get("reason", ""),
                    actor=self.actor,
                )
            )

        return idempotent_mutation(self, fingerprint, propose, status=201)

    def _decide(self, request: Request, pk: str, approve: bool) -> Any:
        change = self._get(pk)
        d = valid(s.TierPriceDecisionSerializer, request)
        service = services.tier_price_approve if approve else services.tier_price_reject
        fingerprint = {"action": "tier_price_approve" if approve else "tier_price_reject", "id": change.id, **d}
        return idempotent_mutation(
            self, fingerprint, lambda: _change_body(service(change_id=change.id, actor=self.actor, note=d["note"]))
        )

    @extend_schema(
        summary="Approve a proposed price (only a user other than the proposer; audited)",
        parameters=[PK_PARAM, IDEMPOTENCY_PARAM],
        request=s.TierPriceDecisionSerializer,
        responses=s.TierPriceChangeSerializer,
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Any:
        return self._decide(request, pk, approve=True)

    @extend_schema(
        summary="Reject a proposed price (audited)",
        parameters=[PK_PARAM, IDEMPOTENCY_PARAM],
        request=s.TierPriceDecisionSerializer,
        responses=s.TierPriceChangeSerializer,
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Any:
        return self._decide(request, pk, approve=False)
