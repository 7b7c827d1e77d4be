"""The unknown outcome of a failover (ADR 1400): the client sent COMMIT and the connection
died before the answer came back. The idempotency record commits in the same transaction
as the change, so a retry with the same key replays the committed result, or, when the
COMMIT never arrived, performs the action exactly once.

A real TCP proxy sits between the service and the real PostgreSQL and cuts the connection
at the COMMIT message: after forwarding it (the server commits, the client never hears) or
before (nothing commits). No database behaviour is mocked.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import DatabaseError, connections, transaction

from audit.models import AuditEvent
from core.actors import Actor
from core.models import OutboxEvent
from core.rls import rls_scope
from numbering import services
from numbering.models import Number
from tests.factories import InventoryPoolFactory, NumberFactory, TenantFactory, TenantPoolFactory

BFF = Actor.service("customer-portal-bff")


class CommitCuttingProxy:
    """Forwards PostgreSQL wire traffic; when armed, cuts both sides at the client's COMMIT,
    either after forwarding it (`after=True`) or instead of forwarding it."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed: bool | None = None  # None = pass through; True/False = cut after/before
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            mute = threading.Event()  # set: this connection's server answers are dropped
            threading.Thread(target=self._client_to_server, args=(client, server, mute), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, mute), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, mute: threading.Event) -> None:
        try:
            while data := src.recv(65536):
                if not mute.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()

    @staticmethod
    def _read(src: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = src.recv(n - len(buf))
            if not chunk:
                raise OSError("closed")
            buf += chunk
        return buf

    def _client_to_server(self, client: socket.socket, server: socket.socket, mute: threading.Event) -> None:
        try:
            (length,) = struct.unpack("!I", self._read(client, 4))  # startup message: no type byte
            server.sendall(struct.pack("!I", length) + self._read(client, length - 4))
            commit_pending = False  # COMMIT parsed (extended protocol); it runs at the next Sync
            while True:
                kind = self._read(client, 1)
                (length,) = struct.unpack("!I", self._read(client, 4))
                body = self._read(client, length - 4)
                message = kind + struct.pack("!I", length) + body
                is_commit = kind in (b"Q", b"P") and b"COMMIT" in body.upper()
                if self.armed is not None and (is_commit or commit_pending):
                    runs_now = kind == b"Q" or kind == b"S"
                    if self.armed and not runs_now:
                        server.sendall(message)
                        commit_pending = True
                        continue
                    if self.armed:
                        mute.set()
                        server.sendall(message)
                        time.sleep(0.5)  # the server commits; its answer never reaches the client
                    self.armed = None  # one cut; the reconnect after it passes through
                    self.cut.set()
                    for s in (client, server):
                        s.shutdown(socket.SHUT_RDWR)
                        s.close()
                    return
                server.sendall(message)
        except OSError:
            for s in (client, server):
                s.close()


@pytest.fixture
def proxy() -> Iterator[CommitCuttingProxy]:
    settings_dict = connections["default"].settings_dict
    p = CommitCuttingProxy((settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432)))
    yield p
    p.listener.close()


def through(proxy: CommitCuttingProxy, fn: Callable[[], Any]) -> Any:
    """Run `fn` on a thread whose default connection goes through the proxy."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        conn = connections.create_connection("default")
        options = {**conn.settings_dict.get("OPTIONS", {}), "sslmode": "disable", "gssencmode": "disable"}
        conn.settings_dict = {**conn.settings_dict, "HOST": "127.0.0.1", "PORT": str(proxy.port), "OPTIONS": options}
        connections["default"] = conn
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc
        finally:
            try:
                conn.close()
            except DatabaseError:
                pass

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the proxied call hung"
    return outcome


def _world() -> tuple[Any, str]:
    pool = InventoryPoolFactory()
    alice = TenantFactory(name="Alice")
    TenantPoolFactory(tenant=alice, inventory_pools=[pool])
    return alice, NumberFactory(pool=pool).number


def _effects(number: str) -> tuple[str, int, int, int]:
    with transaction.atomic(), rls_scope(platform=True):
        row = Number.objects.get(number=number)
        audits = AuditEvent.objects.filter(object_id=number, action="reserve").count()
        events = OutboxEvent.objects.filter(aggregate_id=number).count()
        return row.state, row.version, audits, events


@pytest.mark.parametrize("commit_arrived", [True, False], ids=["commit-arrived", "commit-lost"])
def test_retry_after_unknown_outcome_has_exactly_one_effect(
    committed: None, proxy: CommitCuttingProxy, commit_arrived: bool
) -> None:
    alice, number = _world()
    _, version_before, _, _ = _effects(number)

    def reserve() -> services.MutationResult:
        return services.number_reserve(number=number, tenant_id=alice.id, actor=BFF, idempotency_key="k-unknown")

    proxy.armed = commit_arrived
    first = through(proxy, reserve)
    assert proxy.cut.is_set(), f"the proxy never saw the COMMIT: {first}"
    assert isinstance(first.get("error"), DatabaseError), first  # the caller cannot know the outcome

    state, version, audits, events = _effects(number)
    if commit_arrived:
        assert (state, version, audits, events) == ("RESERVED", version_before + 1, 1, 1)
    else:
        assert (state, version, audits, events) == ("AVAILABLE", version_before, 0, 0)

    retry = reserve()  # same key, healthy connection
    assert retry.replayed is commit_arrived
    assert retry.number["state"] == "RESERVED" and retry.number["tenant_id"] == str(alice.id)
    assert retry.number["version"] == version_before + 1
    assert _effects(number) == ("RESERVED", version_before + 1, 1, 1)  # one change, one audit row, one event

    again = reserve()
    assert again.replayed and again.number == retry.number
    assert _effects(number) == ("RESERVED", version_before + 1, 1, 1)
