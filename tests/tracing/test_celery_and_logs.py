"""Celery tasks are traced; JSON log lines carry the active trace id and still mask numbers."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core.logging import JsonFormatter, MaskNumbersFilter
from numbering import tasks


@pytest.mark.django_db
def test_a_celery_task_run_produces_a_consumer_span_with_its_sql(spans: InMemorySpanExporter) -> None:
    assert tasks.quarantine_sweep.apply().get()["skipped"] is False
    finished = spans.get_finished_spans()
    (run,) = [s for s in finished if s.kind == SpanKind.CONSUMER]
    assert "numbering.tasks.quarantine_sweep" in run.name
    sql = [s for s in finished if s.instrumentation_scope.name == "numbering.db"]
    assert sql and all(s.context.trace_id == run.context.trace_id for s in sql)


def _line(record: logging.LogRecord) -> dict[str, Any]:
    MaskNumbersFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_log_lines_carry_the_active_trace_and_span_ids(spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        record = logging.makeLogRecord({"msg": "released %s", "args": ("+93791234567",), "levelname": "INFO"})
        line = _line(record)
    ctx = span.get_span_context()
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")
    assert line["message"] == "released +93791****67"


def test_log_lines_outside_a_span_have_no_trace_id() -> None:
    line = _line(logging.makeLogRecord({"msg": "idle", "levelname": "INFO"}))
    assert line["trace_id"] is None and "span_id" not in line


def test_explicit_trace_ids_on_the_record_win() -> None:
    record = logging.makeLogRecord({"msg": "x", "levelname": "INFO", "trace_id": "a" * 32, "span_id": "b" * 16})
    line = _line(record)
    assert (line["trace_id"], line["span_id"]) == ("a" * 32, "b" * 16)


def test_object_and_container_extras_are_masked_too() -> None:
    class Request:
        def __str__(self) -> str:
            return "<WSGIRequest: GET '/api/admin/v1/numbers/+93791234567/'>"

    record = logging.makeLogRecord(
        {
            "msg": "Not Found",
            "levelname": "WARNING",
            "request": Request(),
            "numbers": ["+93791234567", 3],
            "detail": {"number": "0791234567", "ok": True},
            "status_code": 404,
        }
    )
    line = _line(record)
    assert line["request"] == "<WSGIRequest: GET '/api/admin/v1/numbers/+93791****67/'>"
    assert line["numbers"] == ["+93791****67", 3]
    assert line["detail"] == {"number": "0791****67", "ok": True}
    assert line["status_code"] == 404
