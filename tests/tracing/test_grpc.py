"""A gRPC call through a real mTLS server continues the caller's traceparent down to PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from tests.factories import NumberFactory
from tests.grpc_server.conftest import ThreadServer
from tests.tracing.conftest import PARENT_SPAN_ID, TRACE_ID, TRACEPARENT


def _wait_for(spans: InMemorySpanExporter, predicate: Callable[[Any], bool]) -> list[Any]:
    # The server span ends on the server's event loop thread, just after the reply is sent.
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [s for s in spans.get_finished_spans() if predicate(s)]
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError(f"no matching span in {[s.name for s in spans.get_finished_spans()]}")


def test_grpc_metadata_traceparent_continues_the_trace_into_sql_spans(
    spans: InMemorySpanExporter, start_server: Callable[..., ThreadServer], connect: Any
) -> None:
    server = start_server()  # after tracing is on: the guard wraps the handlers at registration
    stub = connect(server, "sms-orchestrator")
    n = NumberFactory()
    reply = stub.Lookup(pb.LookupRequest(number=n.number), metadata=(("traceparent", TRACEPARENT),), timeout=10)
    assert reply.number.number == n.number
    (span,) = _wait_for(spans, lambda s: s.kind == SpanKind.SERVER)
    assert span.name == "numbering.v1.NumberingService/Lookup"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert span.attributes["rpc.system"] == "grpc" and span.attributes["rpc.grpc.status_code"] == 0
    sql = [s for s in spans.get_finished_spans() if s.instrumentation_scope.name == "numbering.db"]
    assert sql and all(format(s.context.trace_id, "032x") == TRACE_ID for s in sql)
    assert any(s.parent is not None and s.parent.span_id == span.context.span_id for s in sql)


def test_a_refused_call_is_traced_with_its_status(
    spans: InMemorySpanExporter, start_server: Callable[..., ThreadServer], connect: Any
) -> None:
    server = start_server()
    stub = connect(server, "billing-service")  # may only Lookup
    with pytest.raises(grpc.RpcError) as raised:
        stub.Reserve(pb.ReserveRequest(number="+93791234567", tenant_id="t", ttl_seconds=60), timeout=10)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    (span,) = _wait_for(spans, lambda s: s.kind == SpanKind.SERVER)
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert span.status.status_code != StatusCode.ERROR  # a client's mistake is not a server error


def test_without_tracing_the_handlers_are_not_wrapped() -> None:
    from core import tracing
    from grpc_server.interceptors import CallGuard

    assert not tracing.enabled()

    async def behaviour(request: Any, context: Any) -> Any:
        return request

    guarded = CallGuard(permissions={}, tls=False)._guard("ValidateLease", behaviour)
    assert guarded.__name__ == "guarded"  # the plain guard: no span code on the hot path


def test_a_stream_is_one_server_span_continuing_the_trace(
    spans: InMemorySpanExporter, start_server: Callable[..., ThreadServer], connect: Any
) -> None:
    """ValidateLeaseStream is traced like a unary call: one SERVER span for the stream's life,
    the caller's trace, the status at the end, and the items' database reads beneath it."""
    import uuid

    server = start_server()
    stub = connect(server, "sms-orchestrator")
    unknown = [
        pb.ValidateLeaseStreamRequest(correlation_id=str(i), number=f"+9379123400{i}", tenant_id=str(uuid.uuid4()))
        for i in range(3)
    ]
    answers = list(stub.ValidateLeaseStream(iter(unknown), metadata=(("traceparent", TRACEPARENT),), timeout=10))
    assert sorted(a.correlation_id for a in answers) == ["0", "1", "2"]
    (span,) = _wait_for(spans, lambda s: s.kind == SpanKind.SERVER)
    assert span.name == "numbering.v1.NumberingService/ValidateLeaseStream"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert span.attributes["rpc.grpc.status_code"] == 0
    sql = [s for s in spans.get_finished_spans() if s.instrumentation_scope.name == "numbering.db"]
    assert sql and all(format(s.context.trace_id, "032x") == TRACE_ID for s in sql)


def test_a_refused_stream_is_traced_with_its_status(
    spans: InMemorySpanExporter, start_server: Callable[..., ThreadServer], connect: Any
) -> None:
    server = start_server()
    stub = connect(server, "billing-service")  # no ValidateLease
    request = pb.ValidateLeaseStreamRequest(correlation_id="1", number="+93791234000", tenant_id="t")
    with pytest.raises(grpc.RpcError) as raised:
        list(stub.ValidateLeaseStream(iter([request]), timeout=10))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    (span,) = _wait_for(spans, lambda s: s.kind == SpanKind.SERVER)
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert span.status.status_code != StatusCode.ERROR
