"""Tracing switched on for one test, with an in-memory exporter behind the masking one.

setup_tracing is the production code path (same sampler, instrumentations and masking
exporter); only the exporter and the ratio (1.0, so every root span is kept) differ. The
teardown uninstruments and resets the global provider, so other tests run untraced.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core import tracing
from tests.grpc_server.conftest import connect, pki, start_server  # noqa: F401 - the real mTLS server fixtures


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    with tracing.reset_for_tests():
        assert tracing.setup_tracing("test", exporter=exporter, sampler_ratio=1.0)
        yield exporter
    assert not tracing.enabled()


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
