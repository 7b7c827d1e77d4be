"""One interceptor for every NumberingService call: identity, permission, request id,
error mapping and metrics, in that order.

Identity is the client certificate CN from `auth_context()` (the TLS layer already
verified the chain against the platform CA). A CN not on the allowlist gets
UNAUTHENTICATED; a listed CN calling a method outside its list gets PERMISSION_DENIED;
both are logged and counted. Domain errors become the gRPC status of
core.errors.ERROR_STATUS with a google.rpc.ErrorInfo detail whose reason is the
error code, so nothing known ends as UNKNOWN. Health and reflection pass through (they
still need a certificate from the CA when mTLS is on).

The guard wraps each method's handler once, at registration (see CallGuard): this sits
on the ValidateLease hot path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from django.db import DataError
from django.db import Error as DatabaseError
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram

from core import errors, tracing
from core.authz import grpc_grants
from core.request_context import bind_deadline, request_id_scope
from grpc_server.context import INSECURE_CALLER, current_caller, current_caller_acts_for_tenant
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb

log = logging.getLogger(__name__)

SERVICE = "numbering.v1.NumberingService"
_PREFIX = f"/{SERVICE}/"
ERROR_DOMAIN = "numbering.v1"

# Shared with the per-item histogram of ValidateLeases / ValidateLeaseStream (servicer), so that
# the SLI rules can add the two up bucket by bucket; le="0.02" is the latency SLO's line.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RPC_LATENCY = Histogram(
    "numbering_grpc_server_handling_seconds",
    "gRPC call latency by method and status code",
    ["method", "code"],
    buckets=LATENCY_BUCKETS,
)
AUTH_REJECTIONS = Counter("numbering_grpc_auth_rejections_total", "Calls refused by the CN allowlist", ["code"])

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Refusal = tuple[grpc.StatusCode, grpc.Status]


def status_for(
    code: str, message: str, grpc_code: grpc.StatusCode, metadata: Mapping[str, str] | None = None
) -> grpc.Status:
    """A grpc.Status carrying google.rpc.Status with one ErrorInfo(reason=code)."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=code, domain=ERROR_DOMAIN, metadata=dict(metadata or {})))
    return rpc_status.to_status(status_pb2.Status(code=grpc_code.value[0], message=message, details=[detail]))


def _caller_cn(context: grpc.aio.ServicerContext) -> str | None:
    names = context.auth_context().get("x509_common_name")
    return names[0].decode() if names else None


class CallGuard:
    """Wraps each NumberingService method at registration. Not a grpc.aio.ServerInterceptor
    on purpose: with a server interceptor grpc.aio runs the interceptor chain (a coroutine)
    for every call before it finds the handler; wrapping the handlers once keeps the
    registered-method fast path. Same checks, same order, one place."""

    def __init__(self, *, permissions: Mapping[str, Iterable[str]], tls: bool) -> None:
        self._permissions = grpc_grants(permissions)
        self._tls = tls

    def register(self, servicer: object, server: grpc.aio.Server) -> None:
        service = pb.DESCRIPTOR.services_by_name["NumberingService"]
        handlers = {}
        for method in service.methods:
            behaviour = getattr(servicer, method.name)
            if method.client_streaming or method.server_streaming:
                # ValidateLeaseStream (ADR 1110): the same identity and permission checks, once
                # per stream; per-item errors are the servicer's (item_error below).
                handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                    self._guard_stream(method.name, behaviour),
                    request_deserializer=_lenient(_message_class(method.input_type).FromString),
                    response_serializer=_message_class(method.output_type).SerializeToString,
                )
                continue
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                self._guard(method.name, behaviour),
                request_deserializer=_lenient(_message_class(method.input_type).FromString),
                response_serializer=_message_class(method.output_type).SerializeToString,
            )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        server.add_registered_method_handlers(SERVICE, handlers)

    def _identify(self, name: str, context: grpc.aio.ServicerContext) -> tuple[str, bool, Refusal | None]:
        """(CN, whether it acts for a tenant, the refusal if it may not call `name`): the one
        identity check of every guarded RPC, unary or streaming."""
        if not self._tls:
            return INSECURE_CALLER, False, None
        cn = _caller_cn(context)
        allowed = self._permissions.get(cn) if cn else None
        refusal = _refusal(name, cn, allowed)
        if refusal is not None or allowed is None or cn is None:
            return cn or "", False, refusal
        return cn, allowed.acts_for_tenant, None

    def _guard(self, name: str, behaviour: Behaviour) -> Behaviour:
        latency = {code: RPC_LATENCY.labels(name, code.name) for code in grpc.StatusCode}

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            rid_scope = request_id_scope(_request_id(context))
            rid_scope.__enter__()
            bind_deadline(context.time_remaining)
            code = grpc.StatusCode.OK
            try:
                cn, acts_for_tenant, refusal = self._identify(name, context)
                if refusal is not None:
                    code, status = refusal
                    await _abort(context, status)
                caller_token = current_caller.set(cn)
                bound_token = current_caller_acts_for_tenant.set(acts_for_tenant)
                try:
                    if request is MALFORMED:
                        code = grpc.StatusCode.INVALID_ARGUMENT
                        await _abort(
                            context, status_for("VALIDATION_ERROR", "the request is not a valid message", code)
                        )
                    return await behaviour(request, context)
                finally:
                    current_caller.reset(caller_token)
                    current_caller_acts_for_tenant.reset(bound_token)
            except grpc.aio.AbortError:
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED  # the client went away or its deadline passed
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is answered by failure_of's mapping
                failure = failure_of(exc, name)
                code = failure.code
                await _abort(context, failure.status())
            finally:
                latency[code].observe(time.perf_counter() - started)
                rid_scope.__exit__(None, None, None)

        if tracing.enabled():
            # Outermost, so the guard's own log lines carry the trace id. Decided once here:
            # with tracing off ValidateLease runs exactly as before.
            return tracing.grpc_server_span(SERVICE, name, guarded)
        return guarded

    def _guard_stream(self, name: str, behaviour: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
        """The stream's guard: identity and permission before the first read, then the
        servicer's responses. A failure of the stream as a whole maps as in `_guard`; the
        stream's deadline bounds every wait of its items, as a call's deadline does."""
        latency = {code: RPC_LATENCY.labels(name, code.name) for code in grpc.StatusCode}

        async def guarded(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            rid_scope = request_id_scope(_request_id(context))
            rid_scope.__enter__()
            bind_deadline(context.time_remaining)
            code = grpc.StatusCode.OK
            try:
                cn, acts_for_tenant, refusal = self._identify(name, context)
                if refusal is not None:
                    code, status = refusal
                    await _abort(context, status)
                caller_token = current_caller.set(cn)
                bound_token = current_caller_acts_for_tenant.set(acts_for_tenant)
                try:
                    async for response in behaviour(requests, context):
                        yield response
                finally:
                    current_caller.reset(caller_token)
                    current_caller_acts_for_tenant.reset(bound_token)
            except grpc.aio.AbortError:
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED  # the client went away or the deadline passed
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is answered by failure_of's mapping
                failure = failure_of(exc, name)
                code = failure.code
                await _abort(context, failure.status())
            finally:
                latency[code].observe(time.perf_counter() - started)
                rid_scope.__exit__(None, None, None)

        if tracing.enabled():
            return tracing.grpc_server_stream_span(SERVICE, name, guarded)
        return guarded


def _request_id(context: grpc.aio.ServicerContext) -> str | None:
    """The caller's x-request-id, if it sent one (request_id_scope makes one up otherwise)."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str):
            return value
    return None


@dataclass(frozen=True)
class Failure:
    """How a failure is answered: the status code, the ErrorInfo reason, the message and the
    field it names (if any)."""

    code: grpc.StatusCode
    reason: str
    message: str
    field: str = ""

    def status(self) -> grpc.Status:
        return status_for(self.reason, self.message, self.code, {"field": self.field} if self.field else None)


def failure_of(exc: BaseException, where: str) -> Failure:
    """The one mapping from an exception to its answer, for a whole call (the guards) and for
    one item of a batch or stream (item_error), so nothing known ends as UNKNOWN and the two
    can never disagree. Logs what an operator must see; a domain error is the caller's."""
    if isinstance(exc, errors.DomainError):
        return Failure(grpc.StatusCode[errors.ERROR_STATUS[exc.code][1]], exc.code, exc.message, exc.field or "")
    if isinstance(exc, DataError):
        # A value the database refuses (too long, out of range) is the caller's, not an
        # outage: retrying it would only amplify it (issue 13 item 9).
        log.warning("gRPC %s: a value the database refused: %s", where, exc)
        return Failure(grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR", "a request value does not fit its field")
    if isinstance(exc, DatabaseError):
        log.warning("gRPC %s: database unavailable: %s", where, exc)
        return Failure(grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE", "the database did not respond; retry")
    log.error("gRPC %s failed", where, exc_info=exc)
    return Failure(grpc.StatusCode.INTERNAL, "INTERNAL", "internal error")


def item_error(exc: Exception, method: str) -> pb.ValidateLeaseItemError:
    """One item of a batch or stream that failed: the status ValidateLease would have ended
    with for the same request, as a field of that item's answer."""
    failure = failure_of(exc, f"{method} item")
    return pb.ValidateLeaseItemError(
        code=failure.code.name, reason=failure.reason, message=failure.message, field=failure.field
    )


MALFORMED = object()  # what _lenient hands the guard for bytes that are not the message


def _lenient(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """A deserializer that never raises: grpc would answer a DecodeError as UNKNOWN with the
    exception's class name in the details (issue 13 item 9); the guard answers
    INVALID_ARGUMENT instead, after the identity checks' place in the order."""

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception:  # noqa: BLE001 - DecodeError and friends, all a malformed request
            return MALFORMED

    return deserialize


def _message_class(descriptor: Any) -> Any:
    return getattr(pb, descriptor.name)


def _refusal(name: str, cn: str | None, allowed: Any) -> Refusal | None:
    """The one allowlist check of every guarded RPC, unary or streaming: the CN must be on the
    allowlist and be granted `name`. Counts and logs a refusal; None when the call may go on."""
    if cn is None or allowed is None:
        code = grpc.StatusCode.UNAUTHENTICATED
        AUTH_REJECTIONS.labels(code.name).inc()
        log.warning("gRPC %s refused: client certificate CN %r is not on the allowlist", name, cn)
        return code, status_for("UNAUTHENTICATED", "client certificate CN not allowed", code)
    if name not in allowed:
        code = grpc.StatusCode.PERMISSION_DENIED
        AUTH_REJECTIONS.labels(code.name).inc()
        log.warning("gRPC %s refused: CN %r may call only %s", name, cn, sorted(allowed))
        return code, status_for("PERMISSION_DENIED", f"{cn} may not call {name}", code)
    return None


async def _abort(context: grpc.aio.ServicerContext, status: grpc.Status) -> NoReturn:
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("context.abort returned")  # it raises AbortError
