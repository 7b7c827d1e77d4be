"""The real processes of the service, started through deploy/entrypoint.sh and driven with
numbers in every place a number can travel; their captured log lines are shared by the
log-masking scan (test_process_logs.py) and the Loki pipeline test (test_log_pipeline.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc
from tests.api.conftest import make_token
from tests.conftest import _empty_tables
from tests.events.conftest import NatsServer
from tests.grpc_server.conftest import free_port, subprocess_db_env

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
# Every process of the Procfile, i.e. what `make run` starts.
PROCESSES = ("web", "grpc", "worker", "beat", "relay", "consumers", "expiry")
# Celery's SIGTERM handler writes this with a bare print to stdout, bypassing logging
# (celery/apps/worker.py, not configurable). It carries no data; the Loki pipeline keeps
# non-JSON lines with the labels Kubernetes gives them.
NOT_JSON_ALLOWED = {"worker: Warm shutdown (MainProcess)"}
KNOWN = "+93791234567"
UNKNOWN = "+93799876543"


# Generous: seven processes start at once, and a shared CI machine may be loaded.
def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "web exited during start"
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


def _wait_grpc(port: int, process: subprocess.Popen[bytes], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "grpc exited during start"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                return
            except grpc.FutureTimeoutError:
                pass
    raise AssertionError("grpc did not answer")


def _http(method: str, url: str, token: str, body: Any = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=data, method=method, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _drive(web: str, grpc_port: int, tenant_id: str) -> None:
    staff = make_token("numbering.admin")
    tenant = make_token("tenant.admin", tenant_id)
    national = "0" + KNOWN[3:]
    # As people in Afghanistan type them (issue 16): the real web and grpc processes read them,
    # and no process may log them in full (find_unmasked_number reads every script's digits).
    persian = national.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    arabic_indic = ("00" + KNOWN[1:]).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    for typed in (persian, arabic_indic, KNOWN[:4] + "۹" + KNOWN[5:]):  # the issue's +937۹1234567
        quoted = urllib.parse.quote(typed, safe="")
        assert _http("GET", f"{web}/api/admin/v1/numbers/{quoted}/", staff) == 200, typed
        assert _http("GET", f"{web}/api/tenant/v1/numbers/available/?number={quoted}", tenant) == 200, typed
        _http("GET", f"{web}/api/tenant/v1/numbers/available/?prefix={quoted[:24]}", tenant)
        _http("GET", f"{web}/admin/numbering/number/?q={quoted}", staff)
    for number in (KNOWN, national, KNOWN[1:], UNKNOWN):
        quoted = urllib.parse.quote(number, safe="")
        _http("GET", f"{web}/api/admin/v1/numbers/{quoted}/", staff)
        _http("GET", f"{web}/api/admin/v1/numbers/{number}/", staff)
        _http("GET", f"{web}/api/tenant/v1/numbers/available/?prefix={quoted}", tenant)
        _http("GET", f"{web}/api/no-such-endpoint/{number}/", staff)
        _http("GET", f"{web}/admin/numbering/number/?q={quoted}", staff)
    assert _http("POST", f"{web}/api/tenant/v1/reservations/", tenant, {"number": national}) == 201
    _http("POST", f"{web}/api/tenant/v1/reservations/", tenant, {"number": UNKNOWN})
    _http("POST", f"{web}/api/tenant/v1/reservations/", tenant, {"number": "+9379123456x", "ttl_seconds": -1})
    _http("GET", f"{web}/api/admin/v1/numbers/{KNOWN}/", "not-a-token")
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = pb_grpc.NumberingServiceStub(channel)
        for number in (KNOWN, national, UNKNOWN, "12ab", persian, arabic_indic):
            for call in (
                lambda n=number: stub.ValidateLease(pb.ValidateLeaseRequest(number=n, tenant_id=tenant_id), timeout=10),
                lambda n=number: stub.Lookup(pb.LookupRequest(number=n), timeout=10),
                lambda n=number: stub.Release(pb.ReleaseRequest(number=n, tenant_id=tenant_id), timeout=10),
            ):
                try:
                    call()
                except grpc.RpcError:
                    pass


@pytest.fixture(scope="session")
def process_logs(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, list[str]]]:
    """{process: [every line it wrote]} after a session of real traffic."""
    from tests.factories import InventoryPoolFactory, NumberFactory, TenantFactory, TenantPoolFactory

    logs = tmp_path_factory.mktemp("process-logs")
    web_port, grpc_port = free_port(), free_port()
    env = {
        **subprocess_db_env(),
        # The base settings (INFO), not the quiet test profile: every line a deployment writes.
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "NUMBERING_ENV": "test",
        "LOG_LEVEL": "INFO",
        "WEB_BIND": f"127.0.0.1:{web_port}",
        "WEB_WORKER_TMP_DIR": str(logs),
        "GRPC_PORT": str(grpc_port),
        "GRPC_WORKERS": "1",
        "GRPC_METRICS_PORT": "0",
        "GRPC_INSECURE": "1",
        "GRPC_GRACE_SECONDS": "2",
        "CELERY_WORKER_METRICS_PORT": "0",
        "CELERY_WORKER_CONCURRENCY": "1",
        "CELERY_BEAT_SCHEDULE_FILE": str(logs / "celerybeat-schedule"),
        "OUTBOX_RELAY_METRICS_PORT": "0",
        "EVENT_CONSUMERS_METRICS_PORT": "0",
        "RESERVATION_EXPIRY_METRICS_PORT": "0",
    }
    for name in ("GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE", "GRPC_TLS_CLIENT_CA_FILE"):
        env.pop(name, None)
    # A NATS of this fixture's own: the relay and consumers must not touch the shared one.
    nats_server = NatsServer()
    nats_server.start()
    env["NATS_URL"] = nats_server.url
    subprocess.run(  # noqa: S603
        [str(ENTRYPOINT), "manage", "provision_streams"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    with django_db_blocker.unblock():
        _empty_tables()
        pool = InventoryPoolFactory()
        tenant = TenantFactory(name="Log Scan", registration_no="REG-LOGSCAN")
        TenantPoolFactory(tenant=tenant, inventory_pools=[pool])
        NumberFactory(number=KNOWN, pool=pool)
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name in PROCESSES:
                out = (logs / f"{name}.log").open("wb")
                processes[name] = subprocess.Popen(  # noqa: S603
                    [str(ENTRYPOINT), name], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            _wait_http(f"http://127.0.0.1:{web_port}/livez", processes["web"])
            _wait_grpc(grpc_port, processes["grpc"])
            _drive(f"http://127.0.0.1:{web_port}", grpc_port, str(tenant.id))
            time.sleep(3.0)  # the relay publishes the reservation's event; the last lines reach the files
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(40)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(10)
            _empty_tables()
            nats_server.stop()
    yield {name: (logs / f"{name}.log").read_text(errors="replace").splitlines() for name in PROCESSES}
