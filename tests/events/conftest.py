"""Private NATS servers (JetStream, free port, own store) and in-process relays for event tests.

Every test gets its own nats-server, so parallel runs and the shared server on 4222 never
interfere, and a test may stop and restart "its" NATS.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest

from bench.ports import free_port
from events.relay import OutboxRelay, RelayConfig
from events.streams import provision

NATS_BIN = shutil.which("nats-server") or "/usr/sbin/nats-server"


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


class NatsServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.store = Path(tempfile.mkdtemp(prefix="nats-test-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - fixed binary, our arguments
            [NATS_BIN, "-js", "-sd", str(self.store), "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(up, 10, what=f"nats-server on {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def run(self, coro_fn: Callable[[Any], Any]) -> Any:
        """Run `coro_fn(js)` against this server on a fresh connection."""

        async def main() -> Any:
            nc = await nats.connect(self.url, connect_timeout=3, allow_reconnect=False)
            try:
                return await coro_fn(nc.jetstream())
            finally:
                await nc.close()

        return asyncio.run(main())

    def provision(self) -> Any:
        return self.run(lambda js: provision(js, include_dev=True, replicas=1))


@dataclass
class StreamMessage:
    seq: int
    subject: str
    headers: dict[str, str]
    data: dict[str, Any]


def stream_messages(server: NatsServer, stream: str = "NUMBERING") -> list[StreamMessage]:
    async def read(js: Any) -> list[StreamMessage]:
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            msg = await js.get_msg(stream, seq)
            out.append(StreamMessage(seq, msg.subject, dict(msg.headers or {}), json.loads(msg.data)))
        return out

    return server.run(read)


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer()
    server.start()
    server.provision()
    yield server
    server.stop()
    shutil.rmtree(server.store, ignore_errors=True)


class AsyncRunner:
    """Something with `async run(stop)` on its own event loop in a thread (stop() joins it)."""

    def __init__(self, runnable: Any) -> None:
        self.runnable = runnable
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.error: BaseException | None = None

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.stop_event = asyncio.Event()
            await self.runnable.run(self.stop_event)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def start(self) -> Any:
        self.thread.start()
        wait_for(lambda: self.stop_event is not None, 5, what="relay loop")
        return self

    def stop(self) -> None:
        if self.stop_event is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)
        assert not self.thread.is_alive(), f"{self.runnable!r} did not stop"
        assert self.error is None, f"{self.runnable!r} crashed: {self.error!r}"


class RelayThread(AsyncRunner):
    def __init__(self, nats_url: str, **overrides: Any) -> None:
        overrides.setdefault("batch", 50)
        overrides.setdefault("poll_seconds", 0.5)
        overrides.setdefault("ack_timeout", 1.0)
        overrides.setdefault("max_backoff", 1.0)
        self.relay = OutboxRelay(RelayConfig.from_settings(nats_url=nats_url, **overrides))
        super().__init__(self.relay)


@pytest.fixture
def relays() -> Iterator[Callable[..., RelayThread]]:
    started: list[RelayThread] = []

    def start(nats_url: str, **overrides: Any) -> RelayThread:
        r = RelayThread(nats_url, **overrides).start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


@pytest.fixture
def consumers(nats_server: NatsServer) -> Iterator[Any]:
    from events.consumers import EventConsumers

    runner = AsyncRunner(EventConsumers(nats_server.url, fetch_timeout=0.4))
    runner.start()
    yield runner.runnable
    runner.stop()
