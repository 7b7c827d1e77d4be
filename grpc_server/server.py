"""The gRPC server: one grpc.aio server per worker process, workers sharing the port.

`python manage.py grpcserver` (grpc_server/management/commands/grpcserver.py) starts
`--workers` processes (default: CPU count). Each binds GRPC_PORT with SO_REUSEPORT, so
the kernel spreads connections across them. SIGTERM: health turns NOT_SERVING, the port
stops accepting, in-flight calls get up to GRPC_GRACE_SECONDS to finish, then exit 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from core.authz import configured_grpc_permissions
from core.db_wait import DatabaseThreads
from core.tracing import setup_tracing
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.interceptors import SERVICE, CallGuard
from grpc_server.servicer import EmptyServicer, NumberingServicer
from numbering.lease_lookup import LeaseLookup

log = logging.getLogger(__name__)

SERVICE_CONFIG_FILE = Path(__file__).resolve().parent / "service_config.json"
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@dataclass
class ServerOptions:
    port: int
    host: str = "[::]"
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    insecure: bool = False
    permissions: dict[str, frozenset[str]] = field(default_factory=dict)
    grace_seconds: float = 30.0
    db_threads: int = 8
    empty: bool = False  # benchmark baseline: no lookup behind ValidateLease
    redis_url: str | None = None  # lease cache Redis; default settings.REDIS_URL

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file and self.tls_key_file and self.tls_client_ca_file)

    @classmethod
    def from_settings(cls, **overrides: object) -> ServerOptions:
        values: dict[str, object] = {
            "port": settings.GRPC_PORT,
            "tls_cert_file": settings.GRPC_TLS_CERT_FILE,
            "tls_key_file": settings.GRPC_TLS_KEY_FILE,
            "tls_client_ca_file": settings.GRPC_TLS_CLIENT_CA_FILE,
            "insecure": settings.GRPC_INSECURE,
            "permissions": configured_grpc_permissions(),
            "grace_seconds": float(settings.GRPC_GRACE_SECONDS),
            "db_threads": settings.GRPC_DB_THREADS,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def server_credentials(options: ServerOptions) -> grpc.ServerCredentials:
    def read(name: str, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}={path!r} cannot be read: {exc}") from None

    return grpc.ssl_server_credentials(
        [(read("GRPC_TLS_KEY_FILE", options.tls_key_file), read("GRPC_TLS_CERT_FILE", options.tls_cert_file))],
        root_certificates=read("GRPC_TLS_CLIENT_CA_FILE", options.tls_client_ca_file),
        require_client_auth=True,
    )


class Worker:
    """One grpc.aio server with its lookup and DB threads, run on the current event loop."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.port = 0
        self.server: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()
        self.threads = DatabaseThreads(options.db_threads, thread_name_prefix="grpc-db")
        self.lookup: LeaseLookup | None = None
        self._stopping: asyncio.Event | None = None

    async def start(self) -> int:
        options = self.options
        if not options.tls and not options.insecure:
            raise ImproperlyConfigured(
                "gRPC needs GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE and GRPC_TLS_CLIENT_CA_FILE (mTLS), "
                "or GRPC_INSECURE=1 for local development"
            )
        guard = CallGuard(permissions=options.permissions, tls=options.tls)
        server = grpc.aio.server(
            options=[("grpc.so_reuseport", 1), ("grpc.max_receive_message_length", 64 * 1024)],
        )
        if options.empty:
            guard.register(EmptyServicer(), server)
        else:
            self.lookup = LeaseLookup(threads=self.threads, redis_url=options.redis_url)
            self.lookup.start()
            guard.register(NumberingServicer(lookup=self.lookup, threads=self.threads), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            [
                pb.DESCRIPTOR.services_by_name["NumberingService"].full_name,
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        address = f"{options.host}:{options.port}"
        if options.tls:
            # When TLS is configured plaintext is never served, whatever GRPC_INSECURE says.
            self.port = server.add_secure_port(address, server_credentials(options))
        else:
            log.warning(
                "GRPC_INSECURE=1: serving gRPC WITHOUT TLS on %s - local development and benchmarks only", address
            )
            self.port = server.add_insecure_port(address)
        await server.start()
        self.server = server
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        self._stopping = asyncio.Event()
        return self.port

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def wait_and_drain(self) -> None:
        assert self._stopping is not None and self.server is not None
        await self._stopping.wait()
        log.info("gRPC worker %d draining (grace %ss)", os.getpid(), self.options.grace_seconds)
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.options.grace_seconds)
        if self.lookup is not None:
            await self.lookup.close()
        await asyncio.get_running_loop().run_in_executor(None, self._close_db_threads)

    def _close_db_threads(self) -> None:
        """Close each pool thread's DB connection on that thread, then stop the pool."""
        n = self.options.db_threads
        barrier = threading.Barrier(n)

        def close() -> None:
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
            connections.close_all()

        for future in [self.threads.submit(close) for _ in range(n)]:
            future.result()
        self.threads.shutdown(wait=True)


async def run_worker(options: ServerOptions, on_ready: Callable[[Worker], None] | None = None) -> None:
    setup_tracing("grpc")  # before the guard wraps the handlers: it decides on tracing once
    worker = Worker(options)
    await worker.start()
    # Everything loaded so far (Django, models, protobuf, grpc: ~90k objects) lives as long
    # as the process: move it out of the cyclic GC's reach, so collections triggered by
    # per-call garbage never walk it on the hot path.
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        # The supervisor starts workers with these signals blocked, so a SIGTERM that
        # arrives while a worker is still starting waits here for a clean drain instead
        # of killing it mid-start.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    log.info("gRPC worker %d serving on port %d (%s)", os.getpid(), worker.port, "mTLS" if options.tls else "PLAINTEXT")
    if on_ready is not None:
        on_ready(worker)
    await worker.wait_and_drain()
    log.info("gRPC worker %d stopped", os.getpid())


def start_metrics(port: int, multiprocess_dir: str | None = None, addr: str | None = None) -> None:
    """Serve /metrics on METRICS_BIND_ADDRESS (loopback in development), like every other
    background process; it used to listen on every interface (issue 13 item 10)."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    if not port:
        return
    addr = settings.METRICS_BIND_ADDRESS if addr is None else addr
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        start_http_server(port, addr=addr, registry=registry)
    else:
        start_http_server(port, addr=addr)
    log.info("gRPC metrics on %s:%d/metrics", addr, port)


def supervise(*, workers: int, argv: list[str], metrics_port: int, grace_seconds: float) -> int:
    """Start `workers` worker processes and pass SIGTERM/SIGINT on; exit 0 when they all
    drained cleanly. A worker that dies on its own takes the others down (exit 1) so the
    orchestrator restarts the pod instead of running on half capacity unnoticed."""
    metrics_dir = tempfile.mkdtemp(prefix="numbering-grpc-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    children: list[subprocess.Popen[bytes]] = []
    stopping = threading.Event()

    def forward(signum: int, _frame: object) -> None:
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # Children inherit the blocked mask (kept across exec) and unblock it once their
    # handlers are installed (run_worker); a stop requested meanwhile reaches them then.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        for _ in range(workers):
            children.append(
                subprocess.Popen([sys.executable, *argv, "--workers", "1", "--metrics-port", "0"], env=env)  # noqa: S603
            )
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    start_metrics(metrics_port, metrics_dir)
    deadline: float | None = None
    unexpected = False
    while True:
        codes = [child.poll() for child in children]
        if all(code is not None for code in codes):
            break
        if not stopping.is_set() and any(code is not None for code in codes):
            log.error("a gRPC worker exited unexpectedly (%s); stopping the others", codes)
            unexpected = True
            forward(signal.SIGTERM, None)
        if stopping.is_set():
            deadline = deadline or time.monotonic() + grace_seconds + 10
            if time.monotonic() > deadline:
                for child in children:
                    if child.poll() is None:
                        child.kill()
        time.sleep(0.1)
    codes = [child.returncode for child in children]
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0 if all(code == 0 for code in codes) and not unexpected else 1
