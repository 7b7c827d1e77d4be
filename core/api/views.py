"""Base classes for API views: one transaction + RLS scope per request, idempotent POSTs.

`ScopedAPIView` / `ScopedViewSet` / `ScopedReadOnlyViewSet`:
- authenticate (JWT), check the role matrix (`permission_keys`), then open one
  transaction with the RLS scope from the token: tenant scope for tenant users (their
  `tenant_id`), platform scope for staff (core.rls.scope_for);
- a response ≥ 400 rolls the transaction back, so a failed request leaves nothing behind;
- `self.actor` is the numbering Actor for services; `self.idempotency_key` the header.

`mutation_response(result)` renders a service result as canonical JSON, so the replay of
an Idempotency-Key returns the first response byte for byte.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from core import after_commit, errors, idempotency, rls
from core.actors import Actor
from core.api.auth import Principal
from core.api.errors import problem_response
from core.api.schema import IDEMPOTENCY_PARAM

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"


class ScopedRequestMixin:
    _scope: AbstractContextManager[None] | None = None
    # HTTP methods (lower case) served WITHOUT the request transaction and RLS scope: only
    # for handlers that call a service managing its own transactions and scopes (the import
    # and export runs: progress and FAILED/REJECTED records must commit as they happen,
    # and a long S3 upload must not hold a request transaction open). Auth and the role
    # check still run first. Streaming responses are read after dispatch returned, i.e.
    # outside the request transaction: their generators open their own (see
    # exports.inventory_csv.inventory_csv_rows).
    non_atomic_methods: frozenset[str] = frozenset()

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self._scope = None
        if (request.method or "").lower() in self.non_atomic_methods:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        try:
            # The request's Redis writes that wait for its commit (lease cache, reservation
            # TTL, idempotency copy) go out in one round trip, as a gRPC action's do.
            with after_commit.batched(), transaction.atomic():
                response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
                if response.status_code >= 400:
                    transaction.set_rollback(True)
                if self._scope is not None:
                    self._scope.__exit__(None, None, None)
                    self._scope = None
                return response
        except (OperationalError, InterfaceError):
            # Opening (or committing) the request transaction failed: no primary (a failover),
            # or the connection died. DRF's handler never saw it; answer as it does for a
            # database error inside the view: 503 + Retry-After, never a 500 (issue 14).
            log.warning("database unavailable around %s", request.path, exc_info=True)
            return problem_response(
                503,
                "UNAVAILABLE",
                "the database is unavailable; retry later",
                instance=request.path,
                headers={"Retry-After": "1"},
            )

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if (request.method or "").lower() in self.non_atomic_methods:
            return
        # dispatch's transaction is the outermost one in production: one statement, nothing to
        # restore; nested (a test's transaction), the scope comes back to be exited.
        self._scope = rls.scope_rest_of_transaction(self.principal.actor)

    @property
    def principal(self) -> Principal:
        return self.request.user  # type: ignore[attr-defined,no-any-return]

    @property
    def actor(self) -> Actor:
        return self.principal.actor

    @property
    def idempotency_key(self) -> str | None:
        value = self.request.headers.get(IDEMPOTENCY_HEADER)  # type: ignore[attr-defined]
        if value is None:
            return None
        if not value or len(value) > idempotency.MAX_KEY_LENGTH or not value.isprintable():
            raise ValidationError(
                {IDEMPOTENCY_HEADER: [f"must be 1-{idempotency.MAX_KEY_LENGTH} printable characters"]}
            )
        return value


def mutation_response(data: dict[str, Any], *, status: int = 200, replayed: bool = False) -> HttpResponse:
    response = HttpResponse(idempotency.canonical(data), status=status, content_type="application/json")
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


class ScopedAPIView(ScopedRequestMixin, APIView):
    permission_keys: dict[str, str] = {}


class ScopedViewSet(ScopedRequestMixin, viewsets.GenericViewSet):
    permission_keys: dict[str, str] = {}


class ScopedReadOnlyViewSet(ScopedRequestMixin, viewsets.ReadOnlyModelViewSet):
    permission_keys: dict[str, str] = {}


MAX_BIGINT = 2**63 - 1


def int_pk(value: str, what: str) -> int:
    """A numeric id from the URL; anything else is simply not found (never a 500)."""
    if not value.isdigit() or not 0 < int(value) <= MAX_BIGINT:
        raise NotFound(f"{what} {value[:40]!r} not found (ids are positive integers)")
    return int(value)


def bad_request(request: Any, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 (a SuspiciousOperation such as a forged Host header): problem+json under
    /api/, as every other API error; the plain page elsewhere."""
    if not str(getattr(request, "path", "")).startswith("/api/"):
        from django.views.defaults import bad_request as django_bad_request

        return django_bad_request(request, exception)  # type: ignore[arg-type]
    return problem_response(
        400,
        "VALIDATION_ERROR",
        "the request is malformed (for example its Host header is not one this service answers to)",
        type_slug="bad-request",
    )


def api_not_found(request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any other path under /api/: a problem+json 404 instead of Django's HTML page."""
    return problem_response(404, "NOT_FOUND", f"no API endpoint at {request.path[:200]}")


def idempotent_mutation(
    view: ScopedRequestMixin,
    request_fingerprint: dict[str, Any],
    produce: Callable[[], dict[str, Any]],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """Run `produce` (a service call returning the response body) under the request's
    Idempotency-Key, in the request transaction (DESIGN §2.3): a replay returns the stored
    body byte for byte, the same key with another request is IDEMPOTENCY_KEY_REUSED, and a
    refusal (exception) rolls the claim back with everything else. Only for views whose
    method runs in the request transaction (not `non_atomic_methods`)."""
    outcome = idempotency.run(
        scope=view.actor.identity, key=view.idempotency_key, request=request_fingerprint, produce=produce
    )
    response = mutation_response(outcome.response, status=status, replayed=outcome.replayed)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The request body validated by `serializer_class` (a 400 naming each bad field)."""
    serializer = serializer_class(data=request.data if request.data is not None else {})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def get_by_uuid(queryset: QuerySet[Any], pk: str, what: str) -> Any:
    """One row of `queryset` by UUID; a malformed or invisible id is a 404 naming `what`."""
    try:
        key = uuid.UUID(pk)
    except ValueError:
        raise errors.NotFound(f"{what} {pk[:40]!r} not found (ids are UUIDs)", field="id") from None
    obj = queryset.filter(id=key).first()
    if obj is None:
        raise errors.NotFound(f"{what} {key} not found", field="id")
    return obj


class RefDataWriteMixin:
    """POST (create), PATCH (change) and POST …/deactivate for a reference-data viewset
    (issue 16, ADR 1620); there is no PUT and no DELETE (405: nothing is deleted).

    The viewset names `write_serializer_class` (a ModelSerializer of the settable fields;
    PATCH validates it partially against the row), `write(data=, actor=, instance=)` and
    `deactivate_row(instance=, actor=)` (its app's services), `write_object(pk)` (the row
    by URL id) and `render(row)` (the response body). Every call is idempotent under the
    request's Idempotency-Key and runs in the request transaction."""

    write_serializer_class: type[serializers.ModelSerializer]
    refdata_name: str = "row"

    def write(self, *, data: dict[str, Any], actor: Actor, instance: Any) -> Any:
        raise NotImplementedError

    def deactivate_row(self, *, instance: Any, actor: Actor) -> Any:
        raise NotImplementedError

    def write_object(self, pk: str) -> Any:
        raise NotImplementedError

    def render(self, row: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _validated(self, request: Request, instance: Any = None) -> dict[str, Any]:
        body = request.data if isinstance(request.data, dict) else {}
        if request.data is not None and not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        serializer = self.write_serializer_class(instance=instance, data=body, partial=instance is not None)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _fingerprint(self, op: str, request: Request, pk: str | None = None) -> dict[str, Any]:
        body = request.data if isinstance(request.data, dict) else {}
        return {"op": f"{self.refdata_name}.{op}", "id": pk, "body": body}

    def create(self, request: Request) -> HttpResponse:
        view: Any = self
        # Validated inside the idempotent run: a replay answers the first response even
        # though the row it created now makes the same body a duplicate.
        return idempotent_mutation(
            view,
            self._fingerprint("create", request),
            lambda: self.render(self.write(data=self._validated(request), actor=view.actor, instance=None)),
            status=201,
        )

    def partial_update(self, request: Request, pk: str) -> HttpResponse:
        view: Any = self
        row = self.write_object(pk)
        return idempotent_mutation(
            view,
            self._fingerprint("update", request, pk),
            lambda: self.render(self.write(data=self._validated(request, row), actor=view.actor, instance=row)),
        )

    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str) -> HttpResponse:
        view: Any = self
        row = self.write_object(pk)
        return idempotent_mutation(
            view,
            self._fingerprint("deactivate", request, pk),
            lambda: self.render(self.deactivate_row(instance=row, actor=view.actor)),
        )


def refdata_schema(what: str, write: type[serializers.Serializer], read: type[serializers.Serializer]) -> Any:
    """The OpenAPI shapes of a RefDataWriteMixin viewset's three writes."""
    return extend_schema_view(
        create=extend_schema(
            summary=f"Create {what} (audited, published as an event)",
            parameters=[IDEMPOTENCY_PARAM],
            request=write,
            responses={201: read},
        ),
        partial_update=extend_schema(
            summary=f"Change {what} (audited, published as an event)",
            parameters=[IDEMPOTENCY_PARAM],
            request=write,
            responses=read,
        ),
        deactivate=extend_schema(
            summary=f"Deactivate {what} (never deleted; audited, published as an event)",
            parameters=[IDEMPOTENCY_PARAM],
            request=None,
            responses=read,
        ),
    )
