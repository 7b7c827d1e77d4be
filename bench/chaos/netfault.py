"""A network partition between the drill's service and PostgreSQL (the postgres-partition drill,
ADR 1504), on loopback only.

The service reaches PostgreSQL through a forwarder on a port of its own. A partition is two
iptables DROP rules on that port: packets vanish in both directions. Nothing answers,
refuses or resets, which is what a dead host, a cut link or a firewall looks like. Nobody
else uses the port, so nothing else in the machine is affected. Healing removes the rules.
Connections that TCP has not given up on resume; the others were dropped by their own
timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import threading

from config import db_network

CHAIN = "NUMBERING-CHAOS"


def _probe_like_the_server(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (  # the server's own probes (config/db_network.py)
        ("TCP_KEEPIDLE", db_network.KEEPALIVE_IDLE_SECONDS),
        ("TCP_KEEPINTVL", db_network.KEEPALIVE_INTERVAL_SECONDS),
        ("TCP_KEEPCNT", db_network.KEEPALIVE_COUNT),
        (
            "TCP_USER_TIMEOUT",
            db_network.tcp_user_timeout_ms(os.environ.get("DATABASE_TCP_USER_TIMEOUT_MS")),
        ),
    ):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


class Forwarder(threading.Thread):
    """127.0.0.1:<port> → target, byte for byte, in an asyncio loop of its own."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(daemon=True)
        self.target = (target_host, target_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.server: asyncio.AbstractServer | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The forwarder stands in for the network, so PostgreSQL's own view of a partition
        # must come through it: the server's keepalives (DATABASE_SERVER_NETWORK_OPTIONS) reach
        # only our upstream socket, whose kernel always answers. So the client side carries
        # the same probes; when the partition swallows them, we close the upstream and the
        # server ends the session (and frees its advisory locks) as it would on a real
        # partition. Without this a dead relay session kept its partitions' locks after the
        # heal, whenever nothing happened to be written to it (1,366 events left unpublished
        # in one postgres-partition run, 2026-12-02).
        _probe_like_the_server(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        with contextlib.suppress(asyncio.CancelledError):  # the forwarder stopping: end quietly
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        for stream in (writer, up_writer):
            stream.close()

    async def _serve(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.ready.set()
        async with self.server:
            await self.server.serve_forever()

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(self._serve())
        # The piped connections: let their cancellation run, then close the loop quietly.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def start_and_wait(self) -> Forwarder:
        self.start()
        if not self.ready.wait(10):
            raise RuntimeError("the PostgreSQL forwarder did not start")
        return self

    def _shutdown(self) -> None:
        if self.server is not None:
            self.server.close()  # serve_forever returns; run() then cancels the piped connections

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._shutdown)
        self.join(10)


def _iptables(*args: str, check: bool = True) -> bool:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, check=check).returncode == 0


def partition(port: int) -> None:
    """Drop every packet to or from `port` on loopback, both ways."""
    heal()
    _iptables("-N", CHAIN, check=False)
    if not _iptables("-C", "INPUT", "-i", "lo", "-j", CHAIN, check=False):
        _iptables("-I", "INPUT", "-i", "lo", "-j", CHAIN)
    _iptables("-A", CHAIN, "-p", "tcp", "--dport", str(port), "-j", "DROP")
    _iptables("-A", CHAIN, "-p", "tcp", "--sport", str(port), "-j", "DROP")


def heal() -> None:
    _iptables("-F", CHAIN, check=False)


def remove() -> None:
    heal()
    while _iptables("-D", "INPUT", "-i", "lo", "-j", CHAIN, check=False):
        pass
    _iptables("-X", CHAIN, check=False)
