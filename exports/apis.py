"""Admin endpoints for exports (/api/admin/v1/exports/): the monthly regulator export
(list, trigger a period, download, verify) and the ad-hoc inventory CSV. Thin adapters
over exports.services (the run), exports.selectors (reads), exports.verify and
exports.inventory_csv, like the admin pages and the management commands."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from core import errors
from core import worm as storage
from core.api.errors import StorageUnavailable
from core.api.views import ScopedAPIView, ScopedViewSet, int_pk, valid
from core.periods import parse_period
from exports import selectors, services
from exports.filters import RegulatorExportFilter
from exports.inventory_csv import INVENTORY_FILTERS, inventory_csv_filename, inventory_csv_rows
from exports.models import RegulatorExport
from exports.serializers import (
    ExportRunSerializer,
    ExportTriggerSerializer,
    ExportVerifySerializer,
    RegulatorExportSerializer,
    export_url,
)
from exports.verify import regulator_export_verify
from numbering.selectors import PREFIX_RULE

EXPORT_PARAM = OpenApiParameter(
    "id", str, OpenApiParameter.PATH, description="the export's numeric id or its period YYYY-MM"
)
FILE_PARAM = OpenApiParameter(
    "file", str, OpenApiParameter.QUERY, enum=["csv", "manifest"], description="which object (default csv)"
)


class FileResponseMixin:
    """A view that answers with a file: `Accept: text/csv` (or anything) must not be a 406 —
    the file carries its own content type and errors stay problem+json."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)  # type: ignore[misc]


def export_by_id_or_period(value: str) -> RegulatorExport:
    try:
        period = parse_period(value, field="id")
    except errors.ValidationError:
        record = selectors.regulator_export_find(pk=int_pk(value, "export"))
    else:
        record = selectors.regulator_export_find(period=period.name)
    if record is None:
        raise NotFound(f"export {value[:40]!r} not found (use its id or period YYYY-MM)")
    return record


@extend_schema(tags=["admin: exports"])
class RegulatorExportViewSet(ScopedViewSet):
    """Monthly regulator exports (DESIGN §7): CSV + signed manifest on WORM storage."""

    ordering = ("-period",)
    lookup_value_regex = r"[^/]+"
    filterset_class = RegulatorExportFilter
    # A run streams the CSV, uploads to S3 and records RUNNING/FAILED/UPLOADED in its own
    # transactions: a failed run stays recorded and the upload holds no request transaction.
    non_atomic_methods = frozenset({"post"})
    permission_keys = {"list": "admin.exports.read", "retrieve": "admin.exports.read", "create": "admin.exports.write"}

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.regulator_export_list()

    @extend_schema(summary="Regulator exports, newest period first", responses=RegulatorExportSerializer(many=True))
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(RegulatorExportSerializer(page, many=True).data)

    @extend_schema(summary="One regulator export", parameters=[EXPORT_PARAM], responses=RegulatorExportSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(RegulatorExportSerializer(export_by_id_or_period(pk)).data)

    @extend_schema(
        summary="Run the regulator export of a finished month",
        description=(
            "Generates the CSV and the signed manifest, uploads both with Object Lock COMPLIANCE and records them: "
            "201 with the UPLOADED export. Running a period that is already uploaded changes nothing and answers "
            "200 with the existing record (`changed: false`) — the period is the idempotency key, so retries are "
            "safe without an Idempotency-Key. A storage or signing failure is 503 UNAVAILABLE and stays recorded "
            "as FAILED (the next run retries it); a run already in progress elsewhere is 409 CONFLICT."
        ),
        request=ExportTriggerSerializer,
        responses={201: ExportRunSerializer, 200: ExportRunSerializer},
    )
    def create(self, request: Request) -> Response:
        period = valid(ExportTriggerSerializer, request)["period"].strip()
        try:
            outcome = services.regulator_export_run(period=period, actor=self.actor)
        except services.ExportFailed as exc:
            raise StorageUnavailable(f"{exc}; recorded as FAILED, run it again to retry") from exc
        body = {
            **RegulatorExportSerializer(outcome.export).data,
            "changed": outcome.uploaded,
            "message": outcome.message,
        }
        return Response(body, status=201 if outcome.uploaded else 200, headers={"Location": export_url(outcome.export)})


@extend_schema(tags=["admin: exports"])
class RegulatorExportDownloadView(FileResponseMixin, ScopedAPIView):
    """The stored CSV or manifest, exactly the recorded S3 object version, streamed."""

    permission_keys = {"get": "admin.exports.read"}

    @extend_schema(
        summary="Download the CSV (default) or the signed manifest of an uploaded export",
        parameters=[EXPORT_PARAM, FILE_PARAM],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="the CSV (file=csv)"),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.BINARY, description="the manifest (file=manifest)"),
        },
    )
    def get(self, request: Request, pk: str) -> Any:
        record = export_by_id_or_period(pk)
        which = request.query_params.get("file", "csv")
        if which not in {"csv", "manifest"}:
            raise serializers.ValidationError({"file": [f"{which[:20]!r} must be csv or manifest"]})
        try:
            chunks, name, content_type = selectors.regulator_export_open(record.period, which)
        except storage.StorageError as exc:
            raise StorageUnavailable(str(exc)) from exc
        response = StreamingHttpResponse(chunks, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


@extend_schema(tags=["admin: exports"])
class RegulatorExportVerifyView(ScopedAPIView):
    permission_keys = {"post": "admin.exports.verify"}

    @extend_schema(
        summary="Download both objects and check the manifest signature, the CSV hash and row count, and the lock",
        parameters=[EXPORT_PARAM],
        request=None,
        responses=ExportVerifySerializer,
    )
    def post(self, request: Request, pk: str) -> Response:
        record = export_by_id_or_period(pk)
        result = regulator_export_verify(record.period)
        return Response(
            {"period": result.period, "ok": result.ok, "checks": result.checks, "problems": result.problems}
        )


def _inventory_params() -> list[OpenApiParameter]:
    rules = {
        "state": "comma-separated states, e.g. AVAILABLE,QUARANTINED",
        "kind": "MSISDN or SHORT_CODE",
        "issuer": "issuer code",
        "vanity_tier": "exact tier, e.g. GOLD",
        "tenant": "tenant id (UUID)",
        "pool": "inventory pool code",
        "prefix": PREFIX_RULE,
    }
    return [OpenApiParameter(name, str, OpenApiParameter.QUERY, description=rules[name]) for name in rules]


@extend_schema(tags=["admin: exports"])
class InventoryCsvView(FileResponseMixin, ScopedAPIView):
    """The numbers list as a CSV file, filtered like the numbers list, formula-safe, streamed."""

    permission_keys = {"get": "admin.exports.inventory"}

    @extend_schema(
        summary="Ad-hoc inventory CSV (streamed; cells that could be formulas are neutralised)",
        parameters=_inventory_params(),
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="the CSV")},
    )
    def get(self, request: Request) -> Any:
        filters = {
            name: request.query_params[name] for name in INVENTORY_FILTERS if request.query_params.get(name, "").strip()
        }
        # Filters are validated now, inside the request transaction; the rows are read by the
        # generator while the response streams, in its own transaction with the platform RLS
        # scope held for the whole stream (exports.inventory_csv._inventory_lines).
        lines = inventory_csv_rows(filters, actor=self.actor)
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{inventory_csv_filename()}"'
        return response
