"""The live provider the pacts are verified against (issue 17, ADR 1700): the web process
under gunicorn and `manage.py grpcserver` over mTLS, each a real subprocess on a free port,
on the test database (emptied before and after, like `committed` tests), with the Pact
provider-state endpoint switched on for the web process only.

And the provider side of the message interactions, which runs in the test process:
- gRPC (synchronous messages): decode the request's protojson, call the live gRPC server over
  mTLS with the consumer's own certificate CN, re-encode the answer (or the refusal's
  google.rpc.Status) as protojson;
- events (asynchronous messages): run the real service call the event comes from and answer
  the envelope of the outbox row that call wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from django.db import connections, transaction
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from core.actors import Actor
from core.authz import GRPC_DEFAULT_PERMISSIONS
from core.models import OutboxEvent
from core.rls import rls_scope
from grpc_server import devcerts
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc
from numbering import services
from tests.grpc_server.conftest import free_port, subprocess_db_env

ROOT = Path(__file__).resolve().parents[3]
PACTS_DIR = ROOT / "pacts"
PROVIDER = "numbering-service"
SERVICE = pb.DESCRIPTOR.services_by_name["NumberingService"]


@dataclass
class LiveProvider:
    web_port: int
    grpc_port: int
    pki_dir: Path

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def states_url(self) -> str:
        return f"{self.web_url}/_pact/provider-states"

    def channel(self, cn: str) -> grpc.Channel:
        key = (self.pki_dir / f"{cn}.key").read_bytes()
        cert = (self.pki_dir / f"{cn}.pem").read_bytes()
        ca = (self.pki_dir / "ca.pem").read_bytes()
        return grpc.secure_channel(f"localhost:{self.grpc_port}", grpc.ssl_channel_credentials(ca, key, cert))


def _wait(check: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited during start:\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except (OSError, grpc.RpcError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not become ready:\n{log.read_text()[-3000:]}")


def _stop(*processes: subprocess.Popen[bytes]) -> None:
    """SIGTERM all at once (each drains on its own), then wait; kill what does not exit."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextmanager
def run_provider(workdir: Path, extra_env: dict[str, str]) -> Iterator[LiveProvider]:
    pki_dir = workdir / "pki"
    devcerts.ensure_dev_pki(pki_dir, sorted(GRPC_DEFAULT_PERMISSIONS))
    live = LiveProvider(web_port=free_port(), grpc_port=free_port(), pki_dir=pki_dir)
    env = {**subprocess_db_env(), **extra_env}
    grpc_log, web_log = workdir / "grpcserver.log", workdir / "gunicorn.log"
    grpc_env = {
        **env,
        "GRPC_TLS_CERT_FILE": str(pki_dir / "server.pem"),
        "GRPC_TLS_KEY_FILE": str(pki_dir / "server.key"),
        "GRPC_TLS_CLIENT_CA_FILE": str(pki_dir / "ca.pem"),
        "GRPC_GRACE_SECONDS": "2",
    }
    grpc_cmd = [sys.executable, "manage.py", "grpcserver", "--workers", "1", "--port", str(live.grpc_port)]
    grpc_process = subprocess.Popen(  # noqa: S603
        [*grpc_cmd, "--metrics-port", "0"], cwd=ROOT, env=grpc_env, stderr=grpc_log.open("wb")
    )
    web_env = {**env, "PACT_PROVIDER_STATES_ENABLED": "1"}
    web_process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            f"--bind=127.0.0.1:{live.web_port}",
            "--workers=1",
            "--threads=4",
            "--worker-class=gthread",
            "--timeout=60",
            "--graceful-timeout=1",  # the verifier is done when we stop it
        ],
        cwd=ROOT,
        env=web_env,
        stdout=web_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:

        def web_ready() -> bool:
            with urllib.request.urlopen(f"{live.web_url}/livez", timeout=1) as reply:  # noqa: S310
                return bool(reply.status == 200)

        def grpc_ready() -> bool:
            with live.channel("sms-orchestrator") as channel:
                answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

        _wait(web_ready, web_process, "gunicorn", web_log)
        _wait(grpc_ready, grpc_process, "grpcserver", grpc_log)
        yield live
    finally:
        _stop(web_process, grpc_process)


# --- gRPC interactions: protojson in, live call over mTLS, protojson out -------------------


def _message(contents: dict[str, Any]) -> dict[str, Any]:
    content = contents["content"]
    return json.loads(content) if isinstance(content, str) else content


def protojson(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def grpc_relay(live: LiveProvider, cn: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """The provider side of a consumer's synchronous-message (gRPC) interactions."""

    def handle(description: str, metadata: dict[str, Any]) -> dict[str, Any]:
        request = metadata["request"]
        full_method = request["metadata"]["grpc-method"]
        service, _, name = full_method.rpartition("/")
        assert service == SERVICE.full_name, f"{description}: unknown service {service!r}"
        method = SERVICE.methods_by_name[name]
        request_type = getattr(pb, method.input_type.name)
        message = json_format.ParseDict(_message(request["contents"]), request_type())
        with live.channel(cn) as channel:
            stub = pb_grpc.NumberingServiceStub(channel)
            try:
                answer, status = protojson(getattr(stub, name)(message, timeout=15)), "OK"
            except grpc.RpcError as error:
                detail = rpc_status.from_call(error)  # type: ignore[arg-type]
                assert detail is not None, f"{description}: refusal without google.rpc.Status: {error}"
                answer, status = protojson(detail), error.code().name  # type: ignore[attr-defined]
        return {
            "contents": json.dumps(answer).encode(),
            "metadata": {"grpc-status": status},
            "content_type": "application/json",
        }

    return handle


# --- events: the real service call, then the outbox row it wrote ---------------------------

BFF = Actor.service("customer-portal-bff")
PRODUCERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "numbering.number.assigned.v1": lambda p: services.number_assign(
        number=p["number"], tenant_id=p["tenant_id"], actor=BFF
    ),
    "numbering.lease.renewed.v1": lambda p: services.number_renew(
        number=p["number"], actor=Actor.system("lease-renewal")
    ),
    "numbering.lease.expired.v1": lambda p: services.number_expire_lease(number=p["number"]),
    "numbering.number.released.v1": lambda p: services.number_release(
        number=p["number"], tenant_id=p["tenant_id"], actor=BFF
    ),
    "numbering.number.recalled.v1": lambda p: services.number_recall(
        number=p["number"], actor=Actor.service("compliance-service"), reason="FRAUD", compliance=True
    ),
}


def _platform(fn: Callable[[], Any]) -> Any:
    with transaction.atomic(), rls_scope(platform=True):
        return fn()


def outbox_producer(description: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """The provider side of an event interaction. The description starts with the event type;
    the provider state names the number (and tenant) the event is about."""
    try:
        return _produce(description, metadata)
    finally:
        # Each message arrives on a new thread of Pact's relay server: close its connections.
        connections.close_all()


def _produce(description: str, metadata: dict[str, Any]) -> dict[str, Any]:
    event_type = description.split()[0]
    produce = PRODUCERS.get(event_type)
    assert produce is not None, f"{description}: no service produces {event_type!r} (known: {sorted(PRODUCERS)})"
    (state,) = metadata["providerStates"]
    params = state["params"]
    last = _platform(lambda: OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first()) or 0
    produce(params)
    row = _platform(
        lambda: (
            OutboxEvent.objects.filter(id__gt=last, event_type=event_type, aggregate_id=params["number"])
            .order_by("id")
            .first()
        )
    )
    assert row is not None, f"{description}: the service wrote no {event_type} outbox row"
    return {"contents": json.dumps(row.envelope).encode(), "metadata": None, "content_type": "application/json"}
