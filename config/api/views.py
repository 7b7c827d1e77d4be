"""Base classes for API views: one transaction + RLS scope per request, idempotent POSTs.

`ScopedAPIView` / `ScopedViewSet` / `ScopedReadOnlyViewSet`:
- authenticate (JWT), check the role matrix (`permission_keys`), then open one
  transaction with the RLS scope from the token: tenant scope for tenant users (their
  `tenant_id`), platform scope for staff (numbering.rls.scope_for);
- a response ≥ 400 rolls the transaction back, so a failed request leaves nothing behind;
- `self.actor` is the numbering Actor for services; `self.idempotency_key` the header.

`mutation_response(result)` renders a service result as canonical JSON, so the replay of
an Idempotency-Key returns the first response byte for byte.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from django.db import transaction
from django.http import HttpResponse
from rest_framework import viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api.auth import Principal
from numbering import idempotency, rls
from numbering.actors import Actor

IDEMPOTENCY_HEADER = "Idempotency-Key"


class ScopedRequestMixin:
    _scope: AbstractContextManager[None] | None = None

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self._scope = None
        with transaction.atomic():
            response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
            if response.status_code >= 400:
                transaction.set_rollback(True)
            if self._scope is not None:
                self._scope.__exit__(None, None, None)
                self._scope = None
            return response

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self._scope = rls.scope_for(self.principal.actor)
        self._scope.__enter__()

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


def api_not_found(request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any other path under /api/: a problem+json 404 instead of Django's HTML page."""
    from config.request_context import get_request_id

    body = {
        "type": "urn:numbering:problem:not-found",
        "title": "Not Found",
        "status": 404,
        "code": "NOT_FOUND",
        "detail": f"no API endpoint at {request.path[:200]}",
        "request_id": get_request_id(),
    }
    return HttpResponse(idempotency.canonical(body), status=404, content_type="application/problem+json")
