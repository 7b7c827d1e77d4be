"""A real gRPC server over real mTLS, on a free port, against the test database.

The server runs in a thread of the test process (its own event loop and DB threads), so
it sees what `committed` tests commit; the drain test runs `manage.py grpcserver` as a
subprocess instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from django.conf import settings

from bench.ports import free_port
from core.authz import GRPC_DEFAULT_PERMISSIONS
from grpc_server import devcerts
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc
from grpc_server.server import ServerOptions, Worker, run_worker
from numbering.cache_sync import CacheSync

CLIENTS = [*sorted(GRPC_DEFAULT_PERMISSIONS), "intruder"]  # intruder: signed by our CA, not allowlisted


@dataclass
class Pki:
    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path

    def client(self, cn: str) -> tuple[bytes, bytes]:
        return (self.directory / f"{cn}.key").read_bytes(), (self.directory / f"{cn}.pem").read_bytes()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("grpc-pki")
    devcerts.ensure_dev_pki(directory, CLIENTS)
    # A second CA whose client certificate claims an allowlisted CN.
    rogue_ca = devcerts.make_ca("rogue-ca")
    rogue = devcerts.issue(rogue_ca, "sms-orchestrator")
    (directory / "rogue.key").write_bytes(rogue.key_pem)
    (directory / "rogue.pem").write_bytes(rogue.cert_pem)
    return Pki(directory, directory / "ca.pem", directory / "server.pem", directory / "server.key")


class ThreadServer:
    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.worker: Worker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-grpc-server", daemon=True)
        # The durable cache writer and heartbeat (ADR 1200): without it a worker trusts
        # neither its local entries nor Redis.
        self.cache_sync = CacheSync(interval=0.05, redis_url=options.redis_url)
        self._sync_thread = threading.Thread(target=self.cache_sync.run, name="test-cache-sync", daemon=True)

    def _run(self) -> None:
        def ready(worker: Worker) -> None:
            self.worker = worker
            self._ready.set()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await run_worker(self.options, on_ready=ready)  # the command's code path, minus signals

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - surfaced by start()
            self._error = exc
            self._ready.set()

    def start(self) -> ThreadServer:
        self._sync_thread.start()
        self._thread.start()
        self._ready.wait(15)
        if self._error:
            raise self._error
        assert self.worker is not None and self.worker.port
        if self.worker.lookup is not None:
            assert self.worker.lookup.wait_subscribed(), "lease invalidation listener did not subscribe"
            assert self.worker.lookup.wait_trusted(), "no cache-sync heartbeat reached the worker"
        return self

    @property
    def port(self) -> int:
        assert self.worker is not None
        return self.worker.port

    def stop(self) -> None:
        if self._loop is not None and self.worker is not None:
            self._loop.call_soon_threadsafe(self.worker.request_stop)
        self._thread.join(30)
        self.cache_sync.stop()
        self._sync_thread.join(10)
        assert not self._thread.is_alive(), "gRPC test server did not stop"


def tls_options(pki: Pki, **overrides: Any) -> ServerOptions:
    values: dict[str, Any] = {
        "port": 0,
        "host": "127.0.0.1",
        "tls_cert_file": str(pki.server_cert),
        "tls_key_file": str(pki.server_key),
        "tls_client_ca_file": str(pki.ca),
        "permissions": dict(GRPC_DEFAULT_PERMISSIONS),
        "grace_seconds": 5,
        "db_threads": 4,
    }
    values.update(overrides)
    return ServerOptions(**values)


@pytest.fixture
def start_server(committed: None, pki: Pki, settings: Any) -> Iterator[Callable[..., ThreadServer]]:
    # As in production: a tenant-acting CN's mutations run as the tenant role (ADR 1352). The
    # data is committed, so that role's connection sees it.
    settings.TENANT_REQUESTS_ON_TENANT_ROLE = True
    servers: list[ThreadServer] = []

    def start(**overrides: Any) -> ThreadServer:
        server = ThreadServer(tls_options(pki, **overrides)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def grpc_server(start_server: Callable[..., ThreadServer]) -> ThreadServer:
    return start_server()


@pytest.fixture
def connect(pki: Pki) -> Iterator[Callable[..., pb_grpc.NumberingServiceStub]]:
    channels: list[grpc.Channel] = []

    def connect(
        server: ThreadServer | int, cn: str = "sms-orchestrator", *, key_cert: tuple[bytes, bytes] | None = None
    ):
        port = server if isinstance(server, int) else server.port
        key, cert = key_cert or pki.client(cn)
        credentials = grpc.ssl_channel_credentials(pki.ca.read_bytes(), key, cert)
        channel = grpc.secure_channel(f"localhost:{port}", credentials)
        channels.append(channel)
        return pb_grpc.NumberingServiceStub(channel)

    yield connect
    for channel in channels:
        channel.close()


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own, so the test may kill it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is required (deploy/local/ensure_services.sh installs it)")
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    redis = PrivateRedis(port, process)
    yield redis
    redis.stop()


def subprocess_db_env() -> dict[str, str]:
    """DATABASE_URL / DATABASE_OWNER_URL for a subprocess, pointed at the test database."""
    app, owner = settings.DATABASES["default"], settings.DATABASES["owner"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{app['USER']}@{app['HOST']}:{app['PORT']}/{owner['NAME']}",
        "DATABASE_OWNER_URL": f"postgres://{owner['USER']}@{owner['HOST']}:{owner['PORT']}/{owner['NAME']}",
        "DATABASE_TENANT_URL": "",  # derived from DATABASE_URL: the tenant role on the test database
        "REDIS_URL": settings.REDIS_URL,
    }


def as_platform(fn: Callable[[], Any]) -> Any:
    """Read committed rows as the platform does (committed tests have no ambient RLS scope)."""
    from django.db import transaction

    from core.rls import rls_scope

    with transaction.atomic(), rls_scope(platform=True):
        return fn()
