"""The production path: a process with OTEL_EXPORTER_OTLP_ENDPOINT set exports OTLP/HTTP
protobuf to the collector, numbers masked, the caller's trace continued."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.grpc_server.conftest import subprocess_db_env
from tests.tracing.conftest import TRACE_ID, TRACEPARENT


class Collector:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    c.thread.start()
    yield c
    c.server.shutdown()
    c.server.server_close()


CHILD = f"""
import config.wsgi
from django.test import Client
from opentelemetry import trace
client = Client(HTTP_HOST="localhost")
live = client.get("/livez").status_code
number = client.get("/api/admin/v1/numbers/+93791234567/", HTTP_TRACEPARENT="{TRACEPARENT}").status_code
print(live, number)
trace.get_tracer_provider().force_flush()
"""


def test_a_web_process_exports_masked_spans_to_the_collector(collector: Collector) -> None:
    env = {k: v for k, v in subprocess_db_env().items() if not k.startswith("OTEL_")}
    env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_TRACES_SAMPLER_ARG": "1"})
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)  # noqa: S603
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["200", "401"]
    assert collector.requests, "nothing was exported"
    spans = []
    for path, content_type, body in collector.requests:
        assert path == "/v1/traces" and content_type == "application/x-protobuf"
        assert b"93791234567" not in body and b"791234567" not in body
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert resource["service.name"] == "numbering-service"
            assert resource["numbering.component"] == "web"
            spans += [s for scope in resource_spans.scope_spans for s in scope.spans]
    servers = {s.trace_id.hex(): s for s in spans if s.kind == s.SPAN_KIND_SERVER}
    continued = servers[TRACE_ID]
    assert continued.parent_span_id.hex() == TRACEPARENT.split("-")[2]
    urls = [a.value.string_value for a in continued.attributes if a.key in {"http.url", "url.full", "http.target"}]
    assert urls and all("93791****67" in u for u in urls)
    assert len(servers) == 2  # /livez started its own trace
