"""OpenTelemetry tracing for every process: web, gRPC, Celery and the long-running commands.

`setup_tracing(component)` is called once per process (config/wsgi.py, config/asgi.py,
grpc_server.server.run_worker, the Celery worker signals in config/celery.py and the
relay/consumer/expiry commands). It is a no-op unless settings.OTEL_ENABLED (on when
OTEL_EXPORTER_OTLP_ENDPOINT is set), so by default nothing reaches for a collector.

What is traced (ADR 1000):
- Django requests (opentelemetry-instrumentation-django): a SERVER span named after the
  route template ("GET api/v1/numbers/<str:number>"), continuing an incoming W3C
  `traceparent` header.
- gRPC calls: the CallGuard wraps each handler in one SERVER span, continuing the
  `traceparent` metadata (grpc_server_span below) - only when tracing is on, so
  ValidateLease pays nothing when it is off.
- Celery tasks (opentelemetry-instrumentation-celery): publish and run spans, the trace
  travelling in the message headers.
- SQL (psycopg through Django's execute_wrappers): a CLIENT span per statement under an
  active span, with the parametrised statement and never the parameter values.

Numbers never leave in a span: every exported span passes MaskingSpanExporter, which
masks phone numbers (core.logging.mask_numbers_in) in the span name, string attributes
and event attributes - URLs with a number in the path included.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode

from core.logging import mask_numbers_in

log = logging.getLogger(__name__)

_lock = threading.Lock()
_provider: TracerProvider | None = None
_sql_tracer: trace.Tracer = trace.NoOpTracer()
_SQL_MAX = 2000  # characters of a statement kept on a span


def enabled() -> bool:
    """True once setup_tracing installed a provider in this process."""
    return _provider is not None


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_numbers_in(value)
    if isinstance(value, (list, tuple)):
        return tuple(mask_numbers_in(v) if isinstance(v, str) else v for v in value)
    return value


def masked_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` with every phone number in its name and attributes masked."""
    return ReadableSpan(
        name=mask_numbers_in(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={k: _mask(v) for k, v in (span.attributes or {}).items()},
        events=[
            Event(e.name, {k: _mask(v) for k, v in (e.attributes or {}).items()}, e.timestamp) for e in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code, mask_numbers_in(span.status.description or "") or None),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class MaskingSpanExporter(SpanExporter):
    """Last line of defence, like MaskNumbersFilter for logs: runs on the export thread,
    for sampled spans only, so it costs the request path nothing."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([masked_span(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def setup_tracing(
    component: str,
    *,
    exporter: SpanExporter | None = None,
    sampler_ratio: float | None = None,
) -> bool:
    """Install the tracer provider and instrumentations once per process.

    `component` (web, grpc, celery, relay, ...) goes on the resource as
    numbering.component; the service name is OTEL_SERVICE_NAME. `exporter` (tests) forces
    tracing on with that exporter and a synchronous processor. Returns whether tracing is on.
    """
    global _provider
    from django.conf import settings

    with _lock:
        if _provider is not None:
            return True
        if exporter is None and not settings.OTEL_ENABLED:
            return False
        ratio = settings.OTEL_TRACES_SAMPLER_ARG if sampler_ratio is None else sampler_ratio
        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME, "numbering.component": component}),
            sampler=ParentBased(TraceIdRatioBased(ratio)),
        )
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (adds /v1/traces) and the other
            # standard OTEL_EXPORTER_OTLP_* variables itself.
            provider.add_span_processor(BatchSpanProcessor(MaskingSpanExporter(OTLPSpanExporter())))
        else:
            provider.add_span_processor(SimpleSpanProcessor(MaskingSpanExporter(exporter)))
        trace.set_tracer_provider(provider)
        _instrument(provider)
        _provider = provider
        log.info("tracing on: component=%s service=%s ratio=%s", component, settings.OTEL_SERVICE_NAME, ratio)
        return True


def _instrument(provider: TracerProvider) -> None:
    global _sql_tracer
    from django.db.backends.signals import connection_created
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    DjangoInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    _sql_tracer = provider.get_tracer("numbering.db")  # once: trace_sql runs per statement
    connection_created.connect(_on_connection_created, dispatch_uid="numbering-tracing-sql")
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        _add_sql_wrapper(connection)


def _on_connection_created(sender: Any, connection: Any, **_: Any) -> None:
    _add_sql_wrapper(connection)


def _add_sql_wrapper(connection: Any) -> None:
    if trace_sql not in connection.execute_wrappers:
        connection.execute_wrappers.append(trace_sql)


def trace_sql(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """A CLIENT span per statement - only under an active span (no root traces from
    background polling). Records the parametrised SQL, never `params`."""
    if not trace.get_current_span().get_span_context().is_valid:
        return execute(sql, params, many, context)
    connection = context["connection"]
    operation = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "SQL"
    settings_dict = connection.settings_dict
    attributes = {
        "db.system": "postgresql",
        "db.name": settings_dict.get("NAME") or "",
        "db.user": settings_dict.get("USER") or "",
        "db.statement": sql[:_SQL_MAX],
        "db.operation": operation,
        "net.peer.name": settings_dict.get("HOST") or "",
        "numbering.db.alias": connection.alias,
    }
    with _sql_tracer.start_as_current_span(f"{operation} postgresql", kind=SpanKind.CLIENT, attributes=attributes):
        return execute(sql, params, many, context)


# gRPC status codes that make a server span an error (OpenTelemetry rpc semantic conventions).
_GRPC_SERVER_ERRORS = {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}


def grpc_server_span(
    service: str, method: str, behaviour: Callable[[Any, Any], Awaitable[Any]]
) -> Callable[[Any, Any], Awaitable[Any]]:
    """Wrap a gRPC aio handler in one SERVER span continuing the caller's traceparent."""
    import grpc

    start = _server_span_starter(service, method)

    async def traced(request: Any, context: Any) -> Any:
        with start(context) as span:
            try:
                response = await behaviour(request, context)
            except grpc.aio.AbortError:
                _aborted(span, context)
                raise
            span.set_attribute("rpc.grpc.status_code", 0)
            return response

    return traced


def grpc_server_stream_span(
    service: str, method: str, behaviour: Callable[[Any, Any], AsyncIterator[Any]]
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    """The same for a streaming handler: one SERVER span for the stream's whole life, the
    parent of whatever its items do (Redis, PostgreSQL)."""
    import grpc

    start = _server_span_starter(service, method)

    async def traced(requests: Any, context: Any) -> AsyncIterator[Any]:
        with start(context) as span:
            try:
                async for response in behaviour(requests, context):
                    yield response
            except grpc.aio.AbortError:
                _aborted(span, context)
                raise
            span.set_attribute("rpc.grpc.status_code", 0)

    return traced


def _server_span_starter(service: str, method: str) -> Callable[[Any], Any]:
    tracer = trace.get_tracer("numbering.grpc")
    span_name = f"{service}/{method}"
    base_attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}

    def start(context: Any) -> Any:
        carrier = {key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)}
        return tracer.start_as_current_span(
            span_name,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes=base_attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    return start


def _aborted(span: Any, context: Any) -> None:
    """The status the guard aborted with, on the span; an error status for server-side codes."""
    import grpc

    code = context.code()
    if code is not None:
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        span.set_attribute("rpc.grpc.status_code", code.value[0] if hasattr(code, "value") else code)
        if name in _GRPC_SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR, name))


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) as hex of the active span, or None."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


@contextmanager
def reset_for_tests() -> Iterator[None]:
    """Test helper: tear the provider and instrumentations down afterwards."""
    try:
        yield
    finally:
        _teardown()


def _teardown() -> None:
    global _provider
    from django.db import connections
    from django.db.backends.signals import connection_created
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    with _lock:
        if _provider is None:
            return
        DjangoInstrumentor().uninstrument()
        CeleryInstrumentor().uninstrument()
        connection_created.disconnect(dispatch_uid="numbering-tracing-sql")
        for connection in connections.all(initialized_only=True):
            if trace_sql in connection.execute_wrappers:
                connection.execute_wrappers.remove(trace_sql)
        _provider.shutdown()
        _provider = None
        # The API lets a process set its global provider once; tests set it again.
        from opentelemetry.util._once import Once

        trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
        trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
