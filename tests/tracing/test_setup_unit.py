"""setup_tracing's switches and guards, the masking exporter, the gRPC span's status mapping."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import grpc
import pytest
from django.core.exceptions import ImproperlyConfigured
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from config.env import env_float
from core import tracing


def test_tracing_is_off_by_default_and_setup_is_a_no_op(settings: Any) -> None:
    assert settings.OTEL_ENABLED is False and settings.OTEL_EXPORTER_OTLP_ENDPOINT == ""
    assert tracing.setup_tracing("web") is False
    assert not tracing.enabled()
    assert tracing.current_ids() is None


def test_setup_runs_once_per_process(spans: InMemorySpanExporter) -> None:
    provider = trace.get_tracer_provider()
    assert tracing.setup_tracing("grpc") is True  # a second caller in the same process
    assert trace.get_tracer_provider() is provider
    with trace.get_tracer("t").start_as_current_span("s"):
        ids = tracing.current_ids()
    assert ids is not None and len(ids[0]) == 32 and len(ids[1]) == 16


def test_the_sampler_is_parent_based_on_a_ratio(spans: InMemorySpanExporter) -> None:
    sampler = trace.get_tracer_provider().sampler  # type: ignore[attr-defined]
    assert "ParentBased" in sampler.get_description() and "TraceIdRatioBased" in sampler.get_description()


def test_the_masking_exporter_masks_names_attributes_events_and_status(spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("t")
    with tracer.start_as_current_span(
        "lookup +93791234567", attributes={"n": "0791234567", "k": 3, "l": ["93791234567"]}
    ) as s:
        s.add_event("found", {"number": "+93791234567"})
        s.set_status(trace.Status(StatusCode.ERROR, "bad +93791234567"))
    (span,) = spans.get_finished_spans()
    assert span.name == "lookup +93791****67"
    assert dict(span.attributes) == {"n": "0791****67", "k": 3, "l": ("93791****67",)}
    assert span.events[0].attributes["number"] == "+93791****67"
    assert span.status.description == "bad +93791****67"


def test_the_masking_exporter_passes_flush_and_shutdown_on() -> None:
    inner = InMemorySpanExporter()
    exporter = tracing.MaskingSpanExporter(inner)
    assert exporter.export([]) == SpanExportResult.SUCCESS
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert exporter.export([]) == SpanExportResult.FAILURE  # the inner one is shut down


class _Context:
    def __init__(self, code: grpc.StatusCode | None) -> None:
        self._code = code

    def invocation_metadata(self) -> tuple[tuple[str, Any], ...]:
        return (("x-request-id", "r1"), ("blob-bin", b"\x00"))

    def code(self) -> grpc.StatusCode | None:
        return self._code


@pytest.mark.parametrize(("code", "error"), [(grpc.StatusCode.INTERNAL, True), (grpc.StatusCode.NOT_FOUND, False)])
def test_grpc_server_errors_mark_the_span_and_client_errors_do_not(
    spans: InMemorySpanExporter, code: grpc.StatusCode, error: bool
) -> None:
    async def behaviour(request: Any, context: Any) -> Any:
        raise grpc.aio.AbortError()

    traced = tracing.grpc_server_span("svc", "M", behaviour)
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(traced(None, _Context(code)))
    (span,) = spans.get_finished_spans()
    assert span.attributes["rpc.grpc.status_code"] == code.value[0]
    assert (span.status.status_code == StatusCode.ERROR) is error


def test_an_abort_without_a_code_still_ends_the_span(spans: InMemorySpanExporter) -> None:
    async def behaviour(request: Any, context: Any) -> Any:
        raise grpc.aio.AbortError()

    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(tracing.grpc_server_span("svc", "M", behaviour)(None, _Context(None)))
    (span,) = spans.get_finished_spans()
    assert "rpc.grpc.status_code" not in span.attributes


def test_celery_worker_signals_set_tracing_up_for_thread_pools_only(settings: Any) -> None:
    from config import celery as celery_config

    class Worker:
        pool_cls = "prefork"

    # Off by default: the handlers run and stay no-ops.
    celery_config._trace_worker(sender=Worker())
    celery_config._trace_worker(sender=type("W", (), {"pool_cls": "threads"})())
    celery_config._trace_worker_process()
    assert not tracing.enabled()


def test_env_float_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_float("OTEL_TEST_RATIO", 0.5) == 0.5
    monkeypatch.setenv("OTEL_TEST_RATIO", "0.25")
    assert env_float("OTEL_TEST_RATIO", 0.5, minimum=0, maximum=1) == 0.25
    for raw, message in [
        ("half", "is not a number"),
        ("nan", "is not a number"),
        ("2", "above the maximum 1"),
        ("-1", "below the minimum 0"),
    ]:
        monkeypatch.setenv("OTEL_TEST_RATIO", raw)
        with pytest.raises(ImproperlyConfigured, match=message):
            env_float("OTEL_TEST_RATIO", 0.5, minimum=0, maximum=1)


def _django_setup(env: dict[str, str], code: str = "import django; django.setup()") -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    child.update({"DJANGO_SETTINGS_MODULE": "config.settings.test", **env})
    return subprocess.run([sys.executable, "-c", code], env=child, capture_output=True, text=True, timeout=60)  # noqa: S603


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_ENABLED": "1"}, "OTEL_ENABLED=1 needs OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_TRACES_SAMPLER_ARG": "1.5"}, "OTEL_TRACES_SAMPLER_ARG=1.5 is above the maximum"),
        ({"OTEL_ENABLED": "maybe"}, "OTEL_ENABLED"),
    ],
)
def test_bad_tracing_configuration_stops_the_process(env: dict[str, str], message: str) -> None:
    proc = _django_setup(env)
    assert proc.returncode != 0 and message in proc.stderr


def test_an_endpoint_turns_tracing_on_for_the_wsgi_application() -> None:
    # 127.0.0.1:9 (discard): nothing is exported anyway, no span is made before exit.
    code = (
        "import config.wsgi\n"
        "from django.conf import settings\n"
        "from opentelemetry import trace\n"
        "from core import tracing\n"
        "print(tracing.enabled(), any('opentelemetry' in m for m in settings.MIDDLEWARE),"
        " trace.get_tracer_provider().resource.attributes['service.name'])\n"
    )
    proc = _django_setup(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SERVICE_NAME": "numbering-x"}, code
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "numbering-x"]


def test_production_manifests_export_to_the_collector_and_may_reach_it() -> None:
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
    config = yaml.safe_load((root / "configmap.yaml").read_text())["data"]
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4318")
    assert 0 < float(config["OTEL_TRACES_SAMPLER_ARG"]) <= 1
    policies = list(yaml.safe_load_all((root / "networkpolicy.yaml").read_text()))
    egress = next(p for p in policies if p["metadata"]["name"] == "numbering-egress")["spec"]["egress"]
    assert any({"port": 4318, "protocol": "TCP"} in rule.get("ports", []) for rule in egress)
