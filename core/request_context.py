"""The request id of the unit of work in progress (HTTP request, RPC, job).

One contextvar read by the audit trail and the log formatter, set by the HTTP middleware
here and by the gRPC interceptor and job runners elsewhere.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

_request_id: ContextVar[str] = ContextVar("request_id", default="")
# The tenant the unit of work acts for ("" = platform / unknown), for the log lines only;
# authorisation never reads it.
_tenant: ContextVar[str] = ContextVar("log_tenant", default="")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# How long until the caller stops waiting, asked only when something is about to wait: the
# gRPC interceptor binds the call's `time_remaining`, so a wait on PostgreSQL can give up
# (UNAVAILABLE, counted and retryable) before the caller's deadline does (a cancellation
# nobody counts; ADR 1504). Most calls never wait, so nothing is computed per call.
_remaining: ContextVar[Callable[[], float | None] | None] = ContextVar("call_time_remaining", default=None)
DEADLINE_MARGIN_SECONDS = 0.1  # the answer still has to travel back


def bind_deadline(time_remaining: Callable[[], float | None] | None) -> None:
    """The unit of work in progress must answer within `time_remaining()` seconds (None = no
    limit); the enclosing request scope unbinds it."""
    _remaining.set(time_remaining)


def time_left() -> float | None:
    """Seconds until the caller stops waiting, less the time the answer needs to travel back
    (None when the caller set no deadline)."""
    source = _remaining.get()
    remaining = source() if source is not None else None
    if remaining is None:
        return None
    return remaining - DEADLINE_MARGIN_SECONDS


def get_request_id() -> str:
    return _request_id.get()


def get_tenant() -> str:
    return _tenant.get()


def set_tenant(tenant_id: object) -> None:
    """Name the tenant of the unit of work in progress; the enclosing request scope resets it."""
    _tenant.set(str(tenant_id) if tenant_id else "")


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def request_id_scope(request_id: str | None = None) -> Iterator[str]:
    value = request_id if request_id and _SAFE_ID.match(request_id) else new_request_id()
    token = _request_id.set(value)
    tenant_token = _tenant.set("")
    deadline_token = _remaining.set(None)
    try:
        yield value
    finally:
        _remaining.reset(deadline_token)
        _tenant.reset(tenant_token)
        _request_id.reset(token)


class RequestIdMiddleware:
    """Takes X-Request-ID from the caller when it is well-formed, else makes one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_id_scope(request.headers.get("X-Request-ID")) as rid:
            request.request_id = rid  # type: ignore[attr-defined]
            response = self.get_response(request)
            response["X-Request-ID"] = rid
            # For the access log, written by gunicorn after this scope has ended (the WSGI
            # environ is request.META; config/gunicorn_logging.py reads it).
            request.META["numbering.tenant"] = get_tenant()
            return response
