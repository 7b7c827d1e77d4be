"""grpc_health_probe (the image's health client, flag-compatible with the Go tool) against a
real server over real mTLS, as the k8s probes call it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from grpc_server import health_probe
from tests.grpc_server.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def k8s_args(pki: Any, port: int, service: str = "numbering.v1.NumberingService") -> list[str]:
    # The flags of deploy/k8s/grpc.yaml, with the test PKI (the dev server cert is for localhost).
    return [
        f"-addr=127.0.0.1:{port}",
        f"-service={service}",
        "-tls",
        f"-tls-ca-cert={pki.ca}",
        f"-tls-client-cert={pki.directory / 'sms-orchestrator.pem'}",
        f"-tls-client-key={pki.directory / 'sms-orchestrator.key'}",
        "-tls-server-name=localhost",
        "-connect-timeout=2s",
        "-rpc-timeout=2s",
    ]


def test_a_serving_server_answers_zero(grpc_server: Any, pki: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert health_probe.main(k8s_args(pki, grpc_server.port)) == health_probe.OK
    assert "SERVING" in capsys.readouterr().out


def test_an_unknown_service_is_an_rpc_failure(grpc_server: Any, pki: Any) -> None:
    code, line = health_probe.probe(k8s_args(pki, grpc_server.port, service="no.such.Service"))
    assert code == health_probe.RPC_FAILED and "NOT_FOUND" in line


def test_a_draining_server_is_unhealthy(grpc_server: Any, pki: Any) -> None:
    import asyncio

    from grpc_health.v1 import health_pb2

    future = asyncio.run_coroutine_threadsafe(
        grpc_server.worker.health.set("numbering.v1.NumberingService", health_pb2.HealthCheckResponse.NOT_SERVING),
        grpc_server._loop,
    )
    future.result(5)
    code, line = health_probe.probe(k8s_args(pki, grpc_server.port))
    assert code == health_probe.UNHEALTHY and "NOT_SERVING" in line


def test_nothing_listening_is_a_connection_failure(pki: Any) -> None:
    args = k8s_args(pki, free_port())
    args[-2] = "-connect-timeout=300ms"
    code, line = health_probe.probe(args)
    assert code == health_probe.CONNECTION_FAILED and "failed to connect" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "-addr"),
        (["-addr=x:1", "-tls-ca-cert=/nonexistent/ca.pem", "-tls"], "-tls-ca-cert: /nonexistent/ca.pem"),
        (["-addr=x:1", "-tls-ca-cert=/etc/hostname"], "need -tls"),
        (["-addr=x:1", "-tls", "-tls-client-cert=/etc/hostname"], "go together"),
        (["-addr=x:1", "-rpc-timeout=soon"], "not a duration"),
        (["-addr=x:1", "-connect-timeout=0s"], "must be positive"),
    ],
)
def test_bad_arguments_exit_one_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert health_probe.main(argv) == health_probe.BAD_ARGUMENTS
    assert message in capsys.readouterr().err


def test_the_installed_wrapper_runs_the_module(grpc_server: Any, pki: Any) -> None:
    # deploy/image/grpc_health_probe is what the Dockerfile installs on PATH as grpc_health_probe.
    wrapper = ROOT / "deploy" / "image" / "grpc_health_probe"
    result = subprocess.run(  # noqa: S603
        [str(wrapper), *k8s_args(pki, grpc_server.port)],
        env={"PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin", "NUMBERING_APP_DIR": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "SERVING" in result.stdout
