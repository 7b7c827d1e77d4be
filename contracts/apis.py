"""Admin endpoints for issuers, contracts and number blocks (/api/admin/v1/)."""

from __future__ import annotations

import logging
from typing import Any

import django_filters as df
from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from contracts import selectors, services
from contracts.imports import import_create, run_import
from contracts.models import Contract, InventoryImport, Issuer, NumberBlock, SigningKey
from core import errors
from core.api.schema import IDEMPOTENCY_PARAM
from core.api.views import (
    ScopedAPIView,
    ScopedReadOnlyViewSet,
    ScopedViewSet,
    idempotent_mutation,
    int_pk,
    mutation_response,
    valid,
)

logger = logging.getLogger(__name__)


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

    @extend_schema(parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH, description="code or numeric id")])
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(IssuerSerializer(issuer_by_id_or_code(pk)).data)


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


# --- issuers' signing keys (/issuers/{id}/signing-keys/) --------------------------------------

ISSUER_PARAM = OpenApiParameter(
    "id", str, OpenApiParameter.PATH, description="the issuer's code (e.g. ROSHAN) or its numeric id"
)
FINGERPRINT_PARAM = OpenApiParameter(
    "fingerprint", str, OpenApiParameter.PATH, description="SHA-256 of the key's DER SubjectPublicKeyInfo, hex"
)


def issuer_by_id_or_code(value: str) -> Issuer:
    """`{id}` of the issuer routes: a numeric id, or else the issuer code (ADR 0900)."""
    issuer = (
        Issuer.objects.filter(pk=int_pk(value, "issuer")).first()
        if value.isdigit()
        else selectors.issuer_by_code(value[:64])
    )
    if issuer is None:
        raise NotFound(f"issuer {value[:40]!r} not found (use its code, e.g. ROSHAN, or its id)")
    return issuer


class SigningKeySerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(source="issuer.code", read_only=True)
    usable = serializers.SerializerMethodField(help_text="started, not expired, not revoked: verifies imports now")
    problem = serializers.SerializerMethodField(help_text="why the key cannot be used now (null when usable)")

    class Meta:
        model = SigningKey
        fields = [
            "id",
            "issuer",
            "fingerprint",
            "public_key_pem",
            "valid_from",
            "valid_to",
            "revoked_at",
            "created_at",
            "usable",
            "problem",
        ]
        read_only_fields = fields

    def get_usable(self, obj: SigningKey) -> bool:
        return selectors.signing_key_problem(obj) is None

    def get_problem(self, obj: SigningKey) -> str | None:
        return selectors.signing_key_problem(obj)


class SigningKeyAddSerializer(serializers.Serializer):
    public_key_pem = serializers.CharField(
        max_length=20000, trim_whitespace=False, help_text="RSA ≥ 2048 bits, PEM SubjectPublicKeyInfo"
    )
    valid_from = serializers.DateTimeField(required=False, help_text="ISO 8601 with offset; default now")
    valid_to = serializers.DateTimeField(required=False, allow_null=True, help_text="ISO 8601; default open-ended")


class SigningKeyRevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


def _key_body(key: SigningKey) -> dict[str, Any]:
    return dict(SigningKeySerializer(key).data)


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
        issuer = issuer_by_id_or_code(pk)
        keys = SigningKey.objects.filter(issuer=issuer).select_related("issuer").order_by("-valid_from", "id")
        return Response(SigningKeySerializer(keys, many=True).data)

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
            return _key_body(
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
        if not SigningKey.objects.filter(issuer=issuer, fingerprint=fingerprint[:64].lower()).exists():
            raise NotFound(f"issuer {issuer.code} has no signing key with fingerprint {fingerprint[:64]!r}")

        def revoke() -> dict[str, Any]:
            return _key_body(
                services.signing_key_revoke(fingerprint=fingerprint.lower(), actor=self.actor, reason=d["reason"])
            )

        return idempotent_mutation(
            self, {"action": "signing_key_revoke", "fingerprint": fingerprint.lower(), "reason": d["reason"]}, revoke
        )


# --- inventory imports (/imports/) -------------------------------------------------------------


class ImportSerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(source="issuer.code", read_only=True)
    contract = serializers.CharField(source="contract.reference", read_only=True, allow_null=True, default=None)
    progress_percent = serializers.SerializerMethodField(help_text="processed_rows / total_rows, 0-100")
    url = serializers.SerializerMethodField()

    class Meta:
        model = InventoryImport
        fields = [
            "id",
            "url",
            "issuer",
            "contract",
            "filename",
            "file_sha256",
            "key_fingerprint",
            "mode",
            "status",
            "total_rows",
            "processed_rows",
            "progress_percent",
            "accepted_count",
            "rejected_count",
            "duplicate_count",
            "error",
            "created_by",
            "created_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_progress_percent(self, obj: InventoryImport) -> float:
        if not obj.total_rows:
            return 100.0 if obj.completed_at else 0.0
        return round(min(100.0, 100.0 * obj.processed_rows / obj.total_rows), 1)

    def get_url(self, obj: InventoryImport) -> str:
        return import_url(obj.pk)


class ImportRowSerializer(serializers.Serializer):
    row = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["invalid", "duplicate"])
    value = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class ImportDetailSerializer(ImportSerializer):
    report = ImportRowSerializer(
        many=True,
        read_only=True,
        help_text="the problem rows (invalid vs duplicate), first INVENTORY_IMPORT_REPORT_LIMIT; counts are exact",
    )

    class Meta(ImportSerializer.Meta):
        fields = [*ImportSerializer.Meta.fields, "report"]
        read_only_fields = fields


class ImportOutcomeSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="what this run did; a dry run says what a real run would do")
    message = serializers.CharField()
    committed = serializers.BooleanField()
    noop = serializers.BooleanField(help_text="the same file was already imported: nothing changed")
    dry_run = serializers.BooleanField()
    ok = serializers.BooleanField()


class ImportAcceptedSerializer(ImportDetailSerializer):
    outcome = ImportOutcomeSerializer(
        read_only=True, allow_null=True, help_text="the run's result (null while it is queued to the worker)"
    )

    class Meta(ImportDetailSerializer.Meta):
        fields = [*ImportDetailSerializer.Meta.fields, "outcome"]
        read_only_fields = fields


class ImportCreateSerializer(serializers.Serializer):
    issuer = serializers.CharField(max_length=64, help_text="issuer code, e.g. ROSHAN")
    csv = serializers.FileField(help_text="the CSV exactly as the issuer signed it (docs/import-csv-format.md)")
    signature = serializers.FileField(help_text="detached RSA-PSS or PKCS#1 v1.5 SHA-256 signature over the CSV bytes")
    mode = serializers.ChoiceField(choices=InventoryImport.Mode.choices, default=InventoryImport.Mode.ALL_OR_NOTHING)
    dry_run = serializers.BooleanField(default=False, help_text="verify and validate only; import nothing")


class ImportFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=InventoryImport.Status.choices)
    issuer = df.CharFilter(field_name="issuer__code", lookup_expr="iexact")

    class Meta:
        model = InventoryImport
        fields: list[str] = []


def enqueue_import(import_id: int, *, dry_run: bool = False) -> bool:
    """Queue the run to the Celery worker; False when the broker cannot take it, and the
    caller then runs the import in the request instead (the upload is never left PENDING
    with nothing to run it)."""
    from contracts.tasks import run_import_task

    try:
        run_import_task.delay(import_id, None, dry_run)
    except Exception as exc:  # noqa: BLE001 - any broker failure: fall back to running it here
        logger.warning("import %s: could not queue it to Celery (%s); running it in the request", import_id, exc)
        return False
    return True


def import_url(pk: int) -> str:
    return reverse("admin-import-detail", args=[pk])


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
        if settings.INVENTORY_IMPORT_ASYNC:
            pk, dry_run = imp.pk, d["dry_run"]
            if connection.in_atomic_block:  # inside a caller's transaction: queue once it commits
                transaction.on_commit(lambda: enqueue_import(pk, dry_run=dry_run))
                queued = True
            else:
                queued = enqueue_import(pk, dry_run=dry_run)
            if queued:
                body = {**ImportDetailSerializer(imp).data, "outcome": None}
                return Response(body, status=202, headers={"Location": location})
        outcome = run_import(imp.pk, dry_run=d["dry_run"])
        imp = self.get_queryset().get(pk=imp.pk)
        if imp.status == InventoryImport.Status.REJECTED:
            field = _refusal_field(outcome.message)
            rows = [{"field": f"csv row {r['row']}", "message": r["message"], "rule": r["result"]} for r in imp.report]
            raise errors.ImportRefused(
                f"{outcome.message} (import {imp.pk}: {location})", field=field, instance=location, errors=rows
            )
        body = {
            **ImportDetailSerializer(imp).data,
            "outcome": {
                "status": outcome.status,
                "message": outcome.message,
                "committed": outcome.committed,
                "noop": outcome.noop,
                "dry_run": outcome.dry_run,
                "ok": outcome.ok,
            },
        }
        return Response(body, status=202, headers={"Location": location})
