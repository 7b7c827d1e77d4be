"""Issue 13 item 5, first line: NATS itself refuses an unauthorised publish
(deploy/nats/nats-server.conf, ADR 1353). A private nats-server runs with the project's
config; the relay's identity cannot publish compliance.>, the compliance identity can."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from events.streams import provision
from tests.events.conftest import NATS_BIN, NatsServer, wait_for

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "nats-server.conf"
USERS = ("relay", "consumer", "compliance", "tenant", "ops")
SUSPENDED = "compliance.tenant.suspended.v1"


class AuthNatsServer(NatsServer):
    def __init__(self) -> None:
        super().__init__()
        self.passwords = {user: f"pw-{user}-{os.getpid()}" for user in USERS}

    def start(self) -> None:
        env = {**os.environ, **{f"NATS_{u.upper()}_PASSWORD": pw for u, pw in self.passwords.items()}}
        self.proc = subprocess.Popen(  # noqa: S603 - fixed binary, our arguments
            [NATS_BIN, "-c", str(CONFIG), "-js", "-sd", str(self.store), "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(up, 10, what=f"nats-server with auth on {self.port}")

    def url_for(self, user: str) -> str:
        return f"nats://{user}:{self.passwords[user]}@127.0.0.1:{self.port}"


@pytest.fixture
def auth_nats() -> Iterator[AuthNatsServer]:
    server = AuthNatsServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.store, ignore_errors=True)


def _as(server: AuthNatsServer, user: str, fn: Any) -> Any:
    async def main() -> Any:
        errors: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        nc = await nats.connect(server.url_for(user), connect_timeout=3, allow_reconnect=False, error_cb=on_error)
        try:
            result = await fn(nc)
            await nc.flush(timeout=2)
            await asyncio.sleep(0.2)  # let an async -ERR arrive
            return result, errors
        finally:
            await nc.close()

    return asyncio.run(main())


def test_the_attack_the_relay_identity_cannot_publish_compliance_events(auth_nats: AuthNatsServer) -> None:
    _as(auth_nats, "ops", lambda nc: provision(nc.jetstream(), include_dev=True, replicas=1))

    async def publish(nc: Any) -> None:
        await nc.publish(SUSPENDED, b'{"id": "forged", "tenant_id": "6f1c2d9e-1111-4222-8333-444455556666"}')

    _, relay_errors = _as(auth_nats, "relay", publish)
    assert any("permissions violation" in str(e).lower() for e in relay_errors), relay_errors
    _, tenant_errors = _as(auth_nats, "tenant", publish)
    assert any("permissions violation" in str(e).lower() for e in tenant_errors), tenant_errors

    async def count(nc: Any) -> int:
        return (await nc.jetstream().stream_info("COMPLIANCE")).state.messages

    assert _as(auth_nats, "ops", count)[0] == 0  # nothing reached the stream
    _, compliance_errors = _as(auth_nats, "compliance", publish)
    assert compliance_errors == []
    assert _as(auth_nats, "ops", count)[0] == 1


def test_no_anonymous_or_wrong_password_connections(auth_nats: AuthNatsServer) -> None:
    async def connect(url: str) -> None:
        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)
        await nc.close()

    for url in (auth_nats.url, f"nats://relay:wrong@127.0.0.1:{auth_nats.port}"):
        with pytest.raises(Exception):  # noqa: B017, PT011 - nats-py raises several auth/connection types
            asyncio.run(connect(url))
