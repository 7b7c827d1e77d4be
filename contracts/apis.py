"""Admin endpoints for issuers, contracts and number blocks (/api/admin/v1/). Thin: shapes
in contracts.serializers, filters in contracts.filters, reads in contracts.selectors,
writes (and the run-now-or-queue decision of imports) in contracts.services."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from contracts import selectors, services
from contracts.filters import BlockFilter, ContractFilter, ImportFilter
from contracts.imports import import_create
from contracts.models import Contract, InventoryImport, Issuer, NumberBlock
from contracts.serializers import (
    BlockSerializer,
    BlockWriteSerializer,
    ContractActionResultSerializer,
    ContractActionSerializer,
    ContractSerializer,
    ContractTerminateSerializer,
    ContractWriteSerializer,
    ImportAcceptedSerializer,
    ImportCreateSerializer,
    ImportDetailSerializer,
    ImportSerializer,
    IssuerSerializer,
    IssuerWriteSerializer,
    SigningKeyAddSerializer,
    SigningKeyRevokeSerializer,
    SigningKeySerializer,
    import_body,
    import_url,
    key_body,
)
from core import errors
from core.actors import Actor
from core.api.schema import IDEMPOTENCY_PARAM
from core.api.views import (
    RefDataWriteMixin,
    ScopedAPIView,
    ScopedReadOnlyViewSet,
    ScopedViewSet,
    idempotent_mutation,
    int_pk,
    mutation_response,
    refdata_schema,
    valid,
)


@extend_schema(tags=["admin: issuers and contracts"])
@refdata_schema("an issuer", IssuerWriteSerializer, IssuerSerializer)
class IssuerViewSet(RefDataWriteMixin, ScopedReadOnlyViewSet):
    serializer_class = IssuerSerializer
    write_serializer_class = IssuerWriteSerializer
    refdata_name = "issuer"
    filterset_fields = ["kind"]
    ordering = ("code",)
    lookup_value_regex = r"[^/]+"
    permission_keys = {
        "list": "admin.issuers.read",
        "retrieve": "admin.issuers.read",
        "create": "admin.issuers.write",
        "partial_update": "admin.issuers.write",
        "deactivate": "admin.issuers.deactivate",
    }

    def write(self, *, data: dict[str, Any], actor: Actor, instance: Any) -> Issuer:
        return services.issuer_write(data=data, actor=actor, issuer=instance)

    def deactivate_row(self, *, instance: Any, actor: Actor) -> Issuer:
        return services.issuer_deactivate(issuer=instance, actor=actor)

    def write_object(self, pk: str) -> Issuer:
        return issuer_by_id_or_code(pk)

    def render(self, row: Any) -> dict[str, Any]:
        return dict(IssuerSerializer(row).data)

    def get_queryset(self) -> QuerySet[Any]:
        return Issuer.objects.all()

    @extend_schema(parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH, description="code or numeric id")])
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(IssuerSerializer(issuer_by_id_or_code(pk)).data)


PK = OpenApiParameter("id", int, OpenApiParameter.PATH)


@extend_schema(tags=["admin: issuers and contracts"])
@extend_schema_view(
    create=extend_schema(
        summary="Create a contract (audited, published as an event)",
        parameters=[IDEMPOTENCY_PARAM],
        request=ContractWriteSerializer,
        responses={201: ContractSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a contract (audited, published; status rules as in the admin form)",
        parameters=[IDEMPOTENCY_PARAM],
        request=ContractWriteSerializer,
        responses=ContractSerializer,
    ),
)
class ContractViewSet(RefDataWriteMixin, ScopedReadOnlyViewSet):
    serializer_class = ContractSerializer
    write_serializer_class = ContractWriteSerializer
    refdata_name = "contract"
    filterset_class = ContractFilter
    ordering = ("reference",)
    lookup_value_regex = r"[^/]+"
    # A contract is deactivated by the terminate action (TERMINATED is final): no deactivate.
    deactivate = None  # type: ignore[assignment]
    permission_keys = {
        "list": "admin.contracts.read",
        "retrieve": "admin.contracts.read",
        "create": "admin.contracts.write",
        "partial_update": "admin.contracts.write",
        "suspend": "admin.contracts.suspend",
        "terminate": "admin.contracts.terminate",
    }

    def write(self, *, data: dict[str, Any], actor: Actor, instance: Any) -> Contract:
        return services.contract_write(data=data, actor=actor, contract=instance)

    def write_object(self, pk: str) -> Contract:
        row = Contract.objects.select_related("issuer").filter(id=int_pk(pk, "contract")).first()
        if row is None:
            raise NotFound(f"contract {pk[:40]!r} not found")
        return row

    def render(self, row: Any) -> dict[str, Any]:
        return dict(ContractSerializer(row).data)

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
        summary="Terminate a contract with its end date (audited; retires and recalls its numbers, issue 16)",
        parameters=[IDEMPOTENCY_PARAM],
        request=ContractTerminateSerializer,
        responses=ContractActionResultSerializer,
    )
    @action(detail=True, methods=["post"])
    def terminate(self, request: Request, pk: str) -> Any:
        d = valid(ContractTerminateSerializer, request)
        return mutation_response(
            services.contract_terminate(
                contract_id=int_pk(pk, "contract"),
                actor=self.actor,
                reason=d["reason"],
                ends_on=d["ends_on"],
                idempotency_key=self.idempotency_key,
            )
        )


@extend_schema(tags=["admin: issuers and contracts"])
@refdata_schema("a number block", BlockWriteSerializer, BlockSerializer)
class BlockViewSet(RefDataWriteMixin, ScopedReadOnlyViewSet):
    serializer_class = BlockSerializer
    write_serializer_class = BlockWriteSerializer
    refdata_name = "number_block"
    filterset_class = BlockFilter
    ordering = ("id",)
    lookup_value_regex = r"[^/]+"
    permission_keys = {
        "list": "admin.blocks.read",
        "retrieve": "admin.blocks.read",
        "create": "admin.blocks.write",
        "partial_update": "admin.blocks.write",
        "deactivate": "admin.blocks.deactivate",
    }

    def write(self, *, data: dict[str, Any], actor: Actor, instance: Any) -> NumberBlock:
        return services.block_write(data=data, actor=actor, block=instance)

    def deactivate_row(self, *, instance: Any, actor: Actor) -> NumberBlock:
        return services.block_deactivate(block=instance, actor=actor)

    def write_object(self, pk: str) -> NumberBlock:
        row = NumberBlock.objects.select_related("issuer", "contract").filter(id=int_pk(pk, "block")).first()
        if row is None:
            raise NotFound(f"block {pk[:40]!r} not found")
        return row

    def render(self, row: Any) -> dict[str, Any]:
        return dict(BlockSerializer(row).data)

    def get_queryset(self) -> QuerySet[Any]:
        return NumberBlock.objects.select_related("issuer", "contract")


# --- issuers' signing keys (/issuers/{id}/signing-keys/) --------------------------------------

ISSUER_PARAM = OpenApiParameter(
    "id", str, OpenApiParameter.PATH, description="the issuer's code (e.g. ROSHAN) or its numeric id"
)
FINGERPRINT_PARAM = OpenApiParameter(
    "fingerprint", str, OpenApiParameter.PATH, description="SHA-256 of the key's DER SubjectPublicKeyInfo, hex"
)


def issuer_by_id_or_code(value: str) -> Issuer:
    """`{id}` of the issuer routes: a numeric id, or else the issuer code (ADR 0900)."""
    if value.isdigit():
        int_pk(value, "issuer")  # an id out of range is simply not found
    issuer = selectors.issuer_by_id_or_code(value)
    if issuer is None:
        raise NotFound(f"issuer {value[:40]!r} not found (use its code, e.g. ROSHAN, or its id)")
    return issuer


@extend_schema(tags=["admin: issuers and contracts"])
class IssuerSigningKeysView(ScopedAPIView):
    """An issuer's public keys (several at once for rotation). Imports verify against the usable ones."""

    permission_keys = {"get": "admin.signing_keys.read", "post": "admin.signing_keys.write"}

    @extend_schema(
        summary="List an issuer's signing keys",
        parameters=[ISSUER_PARAM],
        responses=SigningKeySerializer(many=True),
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(SigningKeySerializer(selectors.signing_keys_of(issuer_by_id_or_code(pk)), many=True).data)

    @extend_schema(
        summary="Install a public key for the issuer (audited)",
        parameters=[ISSUER_PARAM, IDEMPOTENCY_PARAM],
        request=SigningKeyAddSerializer,
        responses={201: SigningKeySerializer},
    )
    def post(self, request: Request, pk: str) -> Any:
        issuer = issuer_by_id_or_code(pk)
        d = valid(SigningKeyAddSerializer, request)
        fingerprint = {
            "action": "signing_key_add",
            "issuer": issuer.code,
            "public_key_pem": d["public_key_pem"],
            "valid_from": d.get("valid_from"),
            "valid_to": d.get("valid_to"),
        }

        def add() -> dict[str, Any]:
            return key_body(
                services.signing_key_add(
                    issuer_code=issuer.code,
                    public_key_pem=d["public_key_pem"],
                    actor=self.actor,
                    valid_from=d.get("valid_from"),
                    valid_to=d.get("valid_to"),
                )
            )

        return idempotent_mutation(self, fingerprint, add, status=201)


@extend_schema(tags=["admin: issuers and contracts"])
class IssuerSigningKeyApproveView(ScopedAPIView):
    """Four eyes (ADR 1350): a second, different user approves a newly installed key."""

    permission_keys = {"post": "admin.signing_keys.approve"}

    @extend_schema(
        summary="Approve a newly installed key (audited; only a user other than the installer)",
        parameters=[ISSUER_PARAM, FINGERPRINT_PARAM, IDEMPOTENCY_PARAM],
        request=None,
        responses=SigningKeySerializer,
    )
    def post(self, request: Request, pk: str, fingerprint: str) -> Any:
        issuer = issuer_by_id_or_code(pk)
        if not selectors.signing_keys_of(issuer).filter(fingerprint=fingerprint[:64].lower()).exists():
            raise NotFound(f"issuer {issuer.code} has no signing key with fingerprint {fingerprint[:64]!r}")

        def approve() -> dict[str, Any]:
            return key_body(services.signing_key_approve(fingerprint=fingerprint.lower(), actor=self.actor))

        return idempotent_mutation(self, {"action": "signing_key_approve", "fingerprint": fingerprint.lower()}, approve)


@extend_schema(tags=["admin: issuers and contracts"])
class IssuerSigningKeyRevokeView(ScopedAPIView):
    permission_keys = {"post": "admin.signing_keys.write"}

    @extend_schema(
        summary="Revoke one of the issuer's keys (audited; revoking twice changes nothing)",
        parameters=[ISSUER_PARAM, FINGERPRINT_PARAM, IDEMPOTENCY_PARAM],
        request=SigningKeyRevokeSerializer,
        responses=SigningKeySerializer,
    )
    def post(self, request: Request, pk: str, fingerprint: str) -> Any:
        issuer = issuer_by_id_or_code(pk)
        d = valid(SigningKeyRevokeSerializer, request)
        if not selectors.signing_keys_of(issuer).filter(fingerprint=fingerprint[:64].lower()).exists():
            raise NotFound(f"issuer {issuer.code} has no signing key with fingerprint {fingerprint[:64]!r}")

        def revoke() -> dict[str, Any]:
            return key_body(
                services.signing_key_revoke(fingerprint=fingerprint.lower(), actor=self.actor, reason=d["reason"])
            )

        return idempotent_mutation(
            self, {"action": "signing_key_revoke", "fingerprint": fingerprint.lower(), "reason": d["reason"]}, revoke
        )


# --- inventory imports (/imports/) -------------------------------------------------------------


def _refusal_field(message: str) -> str:
    """The field a refusal names: `signature`, `csv`, `issuer`, `mode`, or `csv` for row/column rules."""
    head = message.removeprefix("refused: ").split(":", 1)[0].strip()
    return head if head in {"signature", "csv", "issuer", "mode"} else "csv"


@extend_schema(tags=["admin: imports"])
class ImportViewSet(ScopedViewSet):
    """Signed inventory imports (DESIGN §7) through the one pipeline of contracts.imports —
    the same code path as `manage.py import_inventory` and the admin wizard."""

    ordering = ("-id",)
    lookup_value_regex = r"[^/]+"
    filterset_class = ImportFilter
    parser_classes = [MultiPartParser]
    # The pipeline manages its own transactions (progress commits per batch; a refusal is
    # kept as a REJECTED record like the command and the wizard do). ADR 0900.
    non_atomic_methods = frozenset({"post"})
    permission_keys = {"list": "admin.imports.read", "retrieve": "admin.imports.read", "create": "admin.imports.write"}

    def get_queryset(self) -> QuerySet[Any]:
        return InventoryImport.objects.select_related("issuer", "contract")

    def get_serializer_class(self) -> Any:
        return ImportDetailSerializer if self.action == "retrieve" else ImportSerializer

    @extend_schema(summary="Imports, newest first, with progress and counts")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ImportSerializer(page, many=True).data)

    @extend_schema(
        summary="One import: status, progress (processed/total rows) and the per-row report",
        parameters=[PK],
        responses=ImportDetailSerializer,
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        imp = self.get_queryset().filter(pk=int_pk(pk, "import")).first()
        if imp is None:
            raise NotFound(f"import {pk} not found")
        return Response(ImportDetailSerializer(imp).data)

    @extend_schema(
        summary="Upload a signed CSV (multipart): verify the signature, validate every row, commit in one transaction",
        description=(
            "Answers 202 with the import and its `Location`. With INVENTORY_IMPORT_ASYNC the run is queued to "
            "the Celery worker (status PENDING; poll the Location for progress); otherwise it runs in the request "
            "and the 202 carries the final state. Re-importing a committed file is a no-op that says so "
            "(status ALREADY_IMPORTED). Any refusal — unknown issuer, no valid key, a signature that does not "
            "verify, a wrong header, bad rows in all-or-nothing mode — is 422 IMPORT_REFUSED problem+json naming "
            "the field, row and column, with the inventory unchanged; the refused import stays visible at the "
            "problem's `instance`. The file itself makes the upload idempotent (the same bytes never import "
            "twice), so no Idempotency-Key is needed."
        ),
        request={"multipart/form-data": ImportCreateSerializer},
        responses={202: ImportAcceptedSerializer},
    )
    def create(self, request: Request) -> Any:
        d = valid(ImportCreateSerializer, request)
        imp = import_create(
            issuer_code=d["issuer"],
            csv_file=d["csv"],
            signature=d["signature"],
            actor=self.actor,
            filename=d["csv"].name or "",
            mode=d["mode"],
        )
        location = import_url(imp.pk)
        outcome = services.import_dispatch(imp.pk, actor=self.actor, dry_run=d["dry_run"])
        imp = self.get_queryset().get(pk=imp.pk)
        if outcome is not None and imp.status == InventoryImport.Status.REJECTED:
            field = _refusal_field(outcome.message)
            rows = [{"field": f"csv row {r['row']}", "message": r["message"], "rule": r["result"]} for r in imp.report]
            raise errors.ImportRefused(
                f"{outcome.message} (import {imp.pk}: {location})", field=field, instance=location, errors=rows
            )
        return Response(import_body(imp, outcome), status=202, headers={"Location": location})
