"""`manage.py grpcserver` as operators run it: two workers on one port (SO_REUSEPORT), and
SIGTERM drains — the in-flight call completes, new calls are refused, the process exits 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import psycopg
from django.conf import settings
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc
from tests.conftest import superuser_dsn
from tests.factories import NumberFactory
from tests.grpc_server.conftest import free_port, subprocess_db_env

ROOT = Path(__file__).resolve().parents[2]


def channel_for(pki: Any, port: int, cn: str = "customer-portal-bff") -> grpc.Channel:
    key, cert = pki.client(cn)
    return grpc.secure_channel(f"localhost:{port}", grpc.ssl_channel_credentials(pki.ca.read_bytes(), key, cert))


def wait_serving(pki: Any, port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "grpcserver exited during start"
        with channel_for(pki, port) as channel:
            try:
                status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
        time.sleep(0.2)
    raise AssertionError("grpcserver did not become healthy")


def test_sigterm_lets_the_in_flight_call_finish_refuses_new_calls_and_exits_zero(
    committed: None, pki: Any, alice: Any, tmp_path: Path
) -> None:
    n = NumberFactory()
    port = free_port()
    env = {
        **subprocess_db_env(),
        "GRPC_TLS_CERT_FILE": str(pki.server_cert),
        "GRPC_TLS_KEY_FILE": str(pki.server_key),
        "GRPC_TLS_CLIENT_CA_FILE": str(pki.ca),
        "GRPC_GRACE_SECONDS": "20",
    }
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "grpcserver", "--workers", "2", "--port", str(port), "--metrics-port", "0"],
        cwd=ROOT,
        env=env,
        stderr=(tmp_path / "grpcserver.log").open("wb"),
    )
    try:
        wait_serving(pki, port, process)
        dbname = settings.DATABASES["default"]["NAME"]
        with psycopg.connect(superuser_dsn()) as lock, ThreadPoolExecutor(1) as pool:
            # Hold the number's row lock so the Reserve's compare-and-set waits: a slow call.
            lock.execute("SELECT id FROM numbering_number WHERE number = %s FOR UPDATE", [n.number])
            slow_channel = channel_for(pki, port)
            stub = pb_grpc.NumberingServiceStub(slow_channel)
            slow = pool.submit(stub.Reserve, pb.ReserveRequest(number=n.number, tenant_id=str(alice.id)), timeout=60)
            with psycopg.connect(superuser_dsn(), autocommit=True) as probe:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    waiting = probe.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                        [dbname],
                    ).fetchone()
                    if waiting and waiting[0]:
                        break
                    time.sleep(0.05)
                else:
                    raise AssertionError("the Reserve never reached the row lock")

            process.send_signal(signal.SIGTERM)
            refused = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and refused is None:
                with channel_for(pki, port) as fresh:
                    try:
                        health_pb2_grpc.HealthStub(fresh).Check(health_pb2.HealthCheckRequest(), timeout=1)
                    except grpc.RpcError as err:
                        refused = err.code()
                time.sleep(0.1)
            assert refused == grpc.StatusCode.UNAVAILABLE, "new calls must be refused while draining"
            assert not slow.done(), "the in-flight call must still be waiting"
            lock.rollback()  # let the slow call finish
            reserved = slow.result(timeout=30)
            assert reserved.number.state == pb.RESERVED
            slow_channel.close()
        code = process.wait(timeout=40)
        assert code == 0, (tmp_path / "grpcserver.log").read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_while_workers_are_still_starting_exits_zero(committed: None, pki: Any, tmp_path: Path) -> None:
    env = {
        **subprocess_db_env(),
        "GRPC_TLS_CERT_FILE": str(pki.server_cert),
        "GRPC_TLS_KEY_FILE": str(pki.server_key),
        "GRPC_TLS_CLIENT_CA_FILE": str(pki.ca),
    }
    log = tmp_path / "grpcserver.log"
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "manage.py",
            "grpcserver",
            "--workers",
            "2",
            "--port",
            str(free_port()),
            "--metrics-port",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stderr=log.open("wb"),
    )
    # As soon as both workers exist (they are still importing Django and cannot serve yet).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        if len(children) == 2:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("grpcserver did not start its workers")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
