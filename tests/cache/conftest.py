"""Real processes for the lease-cache fault tests (ADR 1200): a redis-server of the test's
own (restartable, with an RDB file so a test can bring an older snapshot back), the gRPC
server with its cache-sync (tests/grpc_server/conftest.py), and PostgreSQL."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import override_settings

from core import redis_client
from numbering import cache_epoch
from tests.grpc_server.conftest import connect, free_port, pki, start_server  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


class RedisProcess:
    """redis-server on a fixed port and directory: kill it, restart it empty or from its RDB."""

    def __init__(self, directory: Path, config: Path | None = None) -> None:
        self.directory = directory
        self.config = config  # a committed config (deploy/redis/cache.conf), or redis' defaults
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is required (deploy/local/ensure_services.sh installs it)")
        config = [str(self.config)] if self.config is not None else []
        self.process = subprocess.Popen(  # noqa: S603
            [binary, *config, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", str(self.directory), "--dbfilename", "dump.rdb"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except (redis.RedisError, OSError):
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart_empty(self) -> None:
        self.kill()
        (self.directory / "dump.rdb").unlink(missing_ok=True)
        self.start()

    def snapshot(self) -> Path:
        self.client().save()
        copy = self.directory / "older.rdb"
        shutil.copy(self.directory / "dump.rdb", copy)
        return copy

    def restart_from(self, rdb: Path) -> None:
        self.kill()
        shutil.copy(rdb, self.directory / "dump.rdb")
        self.start()


@pytest.fixture
def cache_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private Redis that every cache writer and reader of this test uses."""
    yield from _serving(RedisProcess(tmp_path).start())


@pytest.fixture
def committed_cache_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """The same, run from the committed cache config (deploy/redis/cache.conf: its policy)."""
    yield from _serving(RedisProcess(tmp_path, ROOT / "deploy" / "redis" / "cache.conf").start())


def _serving(server: RedisProcess) -> Iterator[RedisProcess]:
    with override_settings(REDIS_URL=server.url):
        redis_client.reset()
        cache_epoch.forget()
        try:
            yield server
        finally:
            redis_client.reset()
            server.kill()
    redis_client.reset()


def eventually(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until `predicate` holds (generous: no timing assertion; the bounds are in bench/)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False
