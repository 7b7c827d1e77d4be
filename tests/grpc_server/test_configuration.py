"""Configuration that must fail loudly, and the supervisor of several worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings

from core.authz import GRPC_DEFAULT_PERMISSIONS, configured_grpc_permissions, parse_grpc_permissions
from grpc_server import server as grpc_server_module
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc
from grpc_server.server import ServerOptions, Worker
from tests.grpc_server.conftest import free_port, subprocess_db_env

ROOT = Path(__file__).resolve().parents[2]


def test_default_matrix_is_the_design_one_and_an_override_replaces_it() -> None:
    assert parse_grpc_permissions("") == GRPC_DEFAULT_PERMISSIONS
    assert GRPC_DEFAULT_PERMISSIONS["sms-orchestrator"] == {
        "ValidateLease",
        "ValidateLeases",
        "ValidateLeaseStream",
        "Lookup",
    }
    assert GRPC_DEFAULT_PERMISSIONS["compliance-service"] == {"Lookup", "Recall"}
    assert parse_grpc_permissions('{"fraud-intel": ["Lookup"]}') == {"fraud-intel": frozenset({"Lookup"})}
    with override_settings(GRPC_CLIENT_PERMISSIONS_JSON='{"billing-service": ["Lookup", "ValidateLease"]}'):
        assert configured_grpc_permissions() == {"billing-service": frozenset({"Lookup", "ValidateLease"})}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "non-empty JSON object"),
        ("{}", "non-empty JSON object"),
        ('{"": ["Lookup"]}', "non-empty certificate CN"),
        ('{"x": "Lookup"}', "list of method names"),
        ('{"x": ["Lookup", "DeleteEverything"]}', "unknown method(s) ['DeleteEverything']"),
    ],
)
def test_malformed_permissions_refuse_to_start_naming_the_problem(raw: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="GRPC_CLIENT_PERMISSIONS") as raised:
        parse_grpc_permissions(raw)
    assert message in str(raised.value)


def test_options_come_from_settings() -> None:
    with override_settings(GRPC_PORT=50999, GRPC_GRACE_SECONDS=7, GRPC_INSECURE=True):
        options = ServerOptions.from_settings(empty=True)
    assert (options.port, options.grace_seconds, options.insecure, options.empty, options.tls) == (
        50999,
        7.0,
        True,
        True,
        False,
    )


def test_neither_tls_nor_insecure_refuses_to_start() -> None:
    with pytest.raises(ImproperlyConfigured, match="GRPC_INSECURE=1"):
        asyncio.run(Worker(ServerOptions(port=0, host="127.0.0.1")).start())


def test_unreadable_tls_file_is_named(tmp_path: Path) -> None:
    options = ServerOptions(
        port=0,
        tls_cert_file=str(tmp_path / "missing.pem"),
        tls_key_file=str(tmp_path / "k"),
        tls_client_ca_file=str(tmp_path / "ca"),
    )
    with pytest.raises(ImproperlyConfigured, match="GRPC_TLS_KEY_FILE"):
        grpc_server_module.server_credentials(options)


def test_command_refuses_nonsense_worker_options() -> None:
    with pytest.raises(CommandError, match="at least 1"):
        call_command("grpcserver", "--workers", "0")
    with pytest.raises(CommandError, match="--port 0"):
        call_command("grpcserver", "--workers", "2", "--port", "0")


def test_insecure_server_serves_plaintext_for_development(start_server: Any) -> None:
    server = start_server(tls_cert_file="", tls_key_file="", tls_client_ca_file="", insecure=True)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        answer = pb_grpc.NumberingServiceStub(channel).ValidateLease(
            pb.ValidateLeaseRequest(number="+93791230001", tenant_id="00000000-0000-0000-0000-000000000001")
        )
    assert answer.reason == pb.ValidateLeaseResponse.UNKNOWN_NUMBER


class _Supervised:
    """Run `supervise` in this (main) thread, as the command does, restoring signal handlers."""

    def __init__(self, pki: Any, workers: int = 2, via_command: bool = False) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.workers = workers
        self.via_command = via_command
        self.env = {
            **subprocess_db_env(),
            "GRPC_INSECURE": "1",
            "GRPC_TLS_CERT_FILE": "",
            "GRPC_TLS_KEY_FILE": "",
            "GRPC_TLS_CLIENT_CA_FILE": "",
        }

    def run(self, action: Any) -> int:
        saved_env = dict(os.environ)
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        os.environ.update(self.env)
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            threading.Thread(target=action, daemon=True).start()
            if self.via_command:
                try:
                    call_command(
                        "grpcserver",
                        "--workers",
                        str(self.workers),
                        "--port",
                        str(self.port),
                        "--metrics-port",
                        str(self.metrics_port),
                    )
                except SystemExit as exit_:
                    return int(exit_.code or 0)
                return 0
            return grpc_server_module.supervise(
                workers=self.workers,
                argv=["manage.py", "grpcserver", "--port", str(self.port)],
                metrics_port=self.metrics_port,
                grace_seconds=5,
            )
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            for sig, handler in saved.items():
                signal.signal(sig, handler)

    def wait_serving(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                try:
                    pb_grpc.NumberingServiceStub(channel).ValidateLease(
                        pb.ValidateLeaseRequest(
                            number="+93791230002", tenant_id="00000000-0000-0000-0000-000000000002"
                        ),
                        timeout=1,
                    )
                    return
                except grpc.RpcError:
                    time.sleep(0.2)
        raise AssertionError("workers did not serve")

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", "grpcserver"], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]


def test_supervisor_serves_merged_metrics_and_drains_workers_on_sigterm(committed: None, pki: Any) -> None:
    supervised = _Supervised(pki, via_command=True)
    seen: dict[str, Any] = {}

    def scenario() -> None:
        supervised.wait_serving()
        seen["children"] = supervised.children()
        seen["metrics"] = urllib.request.urlopen(f"http://127.0.0.1:{supervised.metrics_port}/metrics").read().decode()
        os.kill(os.getpid(), signal.SIGTERM)

    assert supervised.run(scenario) == 0
    assert len(seen["children"]) == 2
    assert 'numbering_grpc_server_handling_seconds_count{code="OK",method="ValidateLease"}' in seen["metrics"]
    assert all(not Path(f"/proc/{pid}").exists() for pid in seen["children"])


def test_supervisor_stops_everything_and_fails_when_a_worker_dies(committed: None, pki: Any) -> None:
    supervised = _Supervised(pki)
    seen: dict[str, Any] = {}

    def scenario() -> None:
        supervised.wait_serving()
        seen["children"] = supervised.children()
        os.kill(seen["children"][0], signal.SIGKILL)

    assert supervised.run(scenario) == 1
    assert all(not Path(f"/proc/{pid}").exists() for pid in seen["children"])


def test_unexpected_failure_is_internal_not_unknown(start_server: Any, connect: Any) -> None:
    from tests.grpc_server.test_rpcs import error_of

    server = start_server(empty=True)  # the baseline servicer implements only ValidateLease
    assert error_of(connect(server, "customer-portal-bff").Lookup, pb.LookupRequest(number="+93791230003"))[:2] == (
        grpc.StatusCode.INTERNAL,
        "INTERNAL",
    )


def test_dev_pki_is_generated_once_and_reused(tmp_path: Path, capsys: Any) -> None:
    from grpc_server import devcerts

    assert devcerts.main(["devcerts", str(tmp_path)]) == 0
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {"ca.pem", "ca.key", "server.pem", "server.key", "sms-orchestrator.pem"} <= set(first)
    assert oct((tmp_path / "server.key").stat().st_mode & 0o777) == "0o600"
    (tmp_path / "billing-service.pem").unlink()
    devcerts.main(["devcerts", str(tmp_path)])
    again = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert again["ca.pem"] == first["ca.pem"] and again["server.pem"] == first["server.pem"]
    assert again["billing-service.pem"] != first["billing-service.pem"]  # reissued by the same CA
    assert "ca:" in capsys.readouterr().out


def test_single_worker_metrics_endpoint_serves_the_process_registry() -> None:
    grpc_server_module.start_metrics(0)  # off
    port = free_port()
    grpc_server_module.start_metrics(port)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    assert "numbering_validate_lease_seconds" in body
