"""RFC 7807 `application/problem+json` for every API error.

Domain errors map through core.errors.ERROR_STATUS (the one code → status table);
DRF's own errors get stable codes too. Validation errors list every bad field. Anything
unexpected is logged and answered 500/503 in the same shape (never an HTML page).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.http import Http404, HttpResponse
from rest_framework import exceptions
from rest_framework.response import Response

from core.errors import ERROR_STATUS, DomainError
from core.idempotency import canonical
from core.request_context import get_request_id

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

# DRF exception class → stable code (the DomainError codes live in ERROR_STATUS).
DRF_CODES: tuple[tuple[type[Exception], str], ...] = (
    (exceptions.NotAuthenticated, "UNAUTHENTICATED"),
    (exceptions.AuthenticationFailed, "UNAUTHENTICATED"),
    (exceptions.PermissionDenied, "FORBIDDEN"),
    (exceptions.NotFound, "NOT_FOUND"),
    (exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (exceptions.NotAcceptable, "NOT_ACCEPTABLE"),
    (exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (exceptions.ParseError, "MALFORMED_REQUEST"),
    (exceptions.Throttled, "THROTTLED"),
    (exceptions.ValidationError, "VALIDATION_ERROR"),
)


class StorageUnavailable(exceptions.APIException):
    """The object store (S3) could not be reached or refused the request; retry later."""

    status_code = 503
    default_detail = "the object store is unavailable; retry later"
    default_code = "UNAVAILABLE"


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    instance: str | None = None,
    type_slug: str | None = None,
) -> dict[str, Any]:
    """The one problem+json body (the OpenAPI schema's Problem). Every API error is built
    here: DRF responses (`problem`), and the plain-Django answers given before or outside DRF
    (`problem_response`: the upload guard, Django's 400 handler, unknown /api/ paths)."""
    body: dict[str, Any] = {
        "type": f"urn:numbering:problem:{type_slug or code.lower().replace('_', '-')}",
        "title": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else code,
        "status": status,
        "code": code,
        "detail": detail,
        "request_id": get_request_id(),
    }
    if field:
        body["field"] = field
    if errors:
        body["errors"] = errors
    if instance:
        body["instance"] = instance
    return body


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = problem_body(status, code, detail, field=field, errors=errors, instance=instance)
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    type_slug: str | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """A problem+json answer without DRF (middleware, Django's error handlers), in the
    canonical JSON encoding the idempotency replay uses."""
    body = problem_body(status, code, detail, instance=instance, type_slug=type_slug)
    return HttpResponse(canonical(body), status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def flatten_validation(detail: Any, prefix: str = "") -> list[dict[str, Any]]:
    """DRF's nested error dict/list → [{field, message, code}] for every bad field."""
    out: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            out.extend(flatten_validation(value, f"{prefix}.{name}" if prefix and name else (name or prefix)))
    elif isinstance(detail, list):
        if all(isinstance(item, (str, exceptions.ErrorDetail)) for item in detail):
            for item in detail:
                out.append(_field_error(prefix, item))
        else:
            for index, item in enumerate(detail):
                out.extend(flatten_validation(item, f"{prefix}[{index}]"))
    else:
        out.append(_field_error(prefix, detail))
    return out


def _field_error(field: str, message: Any) -> dict[str, Any]:
    code = getattr(message, "code", "invalid") or "invalid"
    text = str(message)
    return {"field": field or "request", "message": f"{field}: {text}" if field else text, "rule": str(code)}


def _mark_failed(request: Any, view: Any) -> None:
    method = (getattr(request, "method", "") or "").lower()
    if method in getattr(view, "non_atomic_methods", ()):
        return  # no request transaction: the service committed or rolled back its own work
    if connection.in_atomic_block:
        transaction.set_rollback(True)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    request = context.get("request")
    instance = request.path if request is not None else None
    _mark_failed(request, context.get("view"))
    if isinstance(exc, DomainError):
        status = ERROR_STATUS.get(exc.code, (400, ""))[0]
        # A service may name the resource the refusal concerns (`instance`) and list more
        # problems (`errors`, e.g. an import's bad rows) in its details.
        listed = [{"field": exc.field, "message": exc.message, "rule": exc.code}] if exc.field else []
        listed += list(exc.details.get("errors") or [])
        return problem(
            status,
            exc.code,
            exc.message,
            field=exc.field,
            instance=exc.details.get("instance") or instance,
            errors=listed or None,
        )
    if isinstance(exc, RequestDataTooBig):
        return problem(
            413,
            "REQUEST_TOO_LARGE",
            f"the request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes",
            instance=instance,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("no such resource (or it is not visible to you)")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        headers: dict[str, str] = {}
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            auth_header = getattr(exc, "auth_header", None)
            headers["WWW-Authenticate"] = auth_header or 'Bearer realm="numbering-service"'
            status = 401
        else:
            status = exc.status_code
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
        code = next((c for cls, c in DRF_CODES if isinstance(exc, cls)), None) or str(exc.default_code).upper()
        if isinstance(exc, exceptions.ValidationError):
            errors = flatten_validation(exc.detail)
            detail = "; ".join(e["message"] for e in errors) or "the request is invalid"
            return problem(
                400,
                code,
                detail,
                errors=errors,
                instance=instance,
                field=errors[0]["field"] if len(errors) == 1 else None,
            )
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem(status, code, str(detail), instance=instance, headers=headers or None)
    if isinstance(exc, (OperationalError, InterfaceError)):
        log.exception("database unavailable while serving %s", instance)
        return problem(
            503,
            "UNAVAILABLE",
            "the database is unavailable; retry later",
            instance=instance,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, IntegrityError):
        log.warning("integrity error while serving %s: %s", instance, exc)
        return problem(409, "CONFLICT", "the change conflicts with existing data", instance=instance)
    if isinstance(exc, DatabaseError):
        # Reached only by input the validators let through (e.g. a value PostgreSQL refuses).
        log.warning("database refused a value while serving %s: %s", instance, exc)
        return problem(
            400, "VALIDATION_ERROR", "the request could not be processed with these values", instance=instance
        )
    log.exception("unexpected error while serving %s", instance)
    return problem(500, "INTERNAL", "unexpected error; the request id identifies it in the logs", instance=instance)
