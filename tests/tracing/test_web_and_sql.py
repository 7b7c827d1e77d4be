"""A REST request is one server span with its SQL as child spans; a caller's traceparent is continued."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core.logging import find_unmasked_number
from tests.api.conftest import Api, make_token
from tests.factories import NumberFactory
from tests.tracing.conftest import PARENT_SPAN_ID, TRACE_ID, TRACEPARENT

pytestmark = pytest.mark.django_db


def _server_span(spans: InMemorySpanExporter) -> Any:
    servers = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in spans.get_finished_spans()]
    return servers[0]


def test_a_rest_request_is_a_server_span_with_child_sql_spans_in_the_same_trace(
    spans: InMemorySpanExporter,
) -> None:
    n = NumberFactory()
    reply = Api().get(f"/api/admin/v1/numbers/{n.number}/", make_token("numbering.admin"))
    assert reply.status == 200, reply.body
    server = _server_span(spans)
    assert server.name.startswith("GET api/admin/v1/") and "numbers" in server.name  # the route, not the path
    sql = [s for s in spans.get_finished_spans() if s.instrumentation_scope.name == "numbering.db"]
    assert sql, "no SQL span under the request"
    assert all(s.context.trace_id == server.context.trace_id for s in sql)
    assert any(s.parent is not None and s.parent.span_id == server.context.span_id for s in sql)
    select = next(s for s in sql if "numbering_number" in str(s.attributes["db.statement"]))
    assert select.kind == SpanKind.CLIENT
    assert select.attributes["db.system"] == "postgresql"
    assert "%s" in select.attributes["db.statement"]  # parametrised, values never recorded


def test_a_traceparent_header_continues_the_callers_trace(spans: InMemorySpanExporter) -> None:
    n = NumberFactory()
    reply = Api().get(
        f"/api/admin/v1/numbers/{n.number}/", make_token("numbering.admin"), headers={"traceparent": TRACEPARENT}
    )
    assert reply.status == 200
    server = _server_span(spans)
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_SPAN_ID


def test_no_exported_span_carries_an_unmasked_number(spans: InMemorySpanExporter) -> None:
    n = NumberFactory()
    api = Api()
    token = make_token("numbering.admin")
    assert api.get(f"/api/admin/v1/numbers/{n.number}/", token).status == 200
    assert api.get("/api/admin/v1/numbers/", token, {"number": n.number}).status == 200
    assert api.get("/api/admin/v1/numbers/+93790000000/", token).status == 404
    exported = spans.get_finished_spans()
    assert exported
    seen_masked = False
    for span in exported:
        texts = [span.name, *(str(v) for v in span.attributes.values())]
        texts += [str(v) for e in span.events for v in e.attributes.values()]
        for text in texts:
            assert not find_unmasked_number(text), (span.name, text)
            seen_masked = seen_masked or "****" in text
    assert seen_masked, "the URL attributes should be present, masked"


def test_sql_outside_any_span_is_not_traced(spans: InMemorySpanExporter) -> None:
    NumberFactory()
    assert [s for s in spans.get_finished_spans() if s.instrumentation_scope.name == "numbering.db"] == []
