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


# --- the project's own NATS (deploy/local/ensure_services.sh, ADR 1355) --------------------


def _project(url: str, fn: Any) -> tuple[Any, list[Exception]]:
    async def main() -> Any:
        errors: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        nc = await nats.connect(url, connect_timeout=3, allow_reconnect=False, error_cb=on_error)
        try:
            result = await fn(nc)
            await nc.flush(timeout=2)
            await asyncio.sleep(0.2)  # let an async -ERR arrive
            return result, errors
        finally:
            await nc.close()

    return asyncio.run(main())


def test_the_projects_nats_gives_each_process_its_own_user() -> None:
    from django.conf import settings

    from events.natsurl import redacted

    users = {name: redacted(getattr(settings, f"NATS_{name.upper()}_URL")) for name in ("relay", "consumer", "ops")}
    assert all(url.startswith(f"nats://{name}:***@") for name, url in users.items()), users
    assert redacted("nats://relay:s3cret@a:1,nats://relay:s3cret@b:2") == "nats://relay:***@a:1,nats://relay:***@b:2"


def test_the_attack_on_the_projects_nats_an_unauthorised_publish_is_refused_and_reaches_no_stream() -> None:
    """The NATS that `make run` and `make test` use (127.0.0.1:4223, started by
    ensure_services.sh with deploy/nats/nats-server.conf) refuses anonymous clients, and the
    relay's and consumers' identities cannot publish compliance.> (permissions violation)."""
    from django.conf import settings

    _project(settings.NATS_OPS_URL, lambda nc: provision(nc.jetstream(), include_dev=True, replicas=1))

    async def anonymous() -> None:
        nc = await nats.connect(settings.NATS_URL, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)
        await nc.close()

    with pytest.raises(Exception):  # noqa: B017, PT011 - nats-py raises several auth/connection types
        asyncio.run(anonymous())

    async def count(nc: Any) -> int:
        return (await nc.jetstream().stream_info("COMPLIANCE")).state.messages

    before = _project(settings.NATS_OPS_URL, count)[0]

    async def publish(nc: Any) -> None:
        await nc.publish(SUSPENDED, b'{"id": "forged", "tenant_id": "6f1c2d9e-1111-4222-8333-444455556666"}')

    for url in (settings.NATS_RELAY_URL, settings.NATS_CONSUMER_URL):
        _, errors = _project(url, publish)
        assert any("permissions violation" in str(e).lower() for e in errors), errors
    assert _project(settings.NATS_OPS_URL, count)[0] == before


@pytest.mark.usefixtures("committed")
def test_relay_and_consumers_run_as_their_own_users_and_only_the_signed_compliance_event_recalls(
    auth_nats: AuthNatsServer, relays: Any, alice: Any, bob: Any
) -> None:
    """End to end under authentication: the relay (user relay) publishes our events; the
    consumers (user consumer) pull and ack; a compliance-user publish signed as another
    identity recalls nothing, the one signed as the compliance service recalls bob."""
    import json

    from django.conf import settings
    from django.db import transaction

    from core.models import OutboxEvent
    from core.outbox import outbox_enqueue
    from core.rls import rls_scope
    from events.consumers import EventConsumers
    from events.publishers import signed_headers
    from numbering.lifecycle import State
    from numbering.models import Number
    from tests.events.conftest import AsyncRunner
    from tests.events.test_consumers import envelope
    from tests.numbering.helpers import number_in

    _as(auth_nats, "ops", lambda nc: provision(nc.jetstream(), include_dev=True, replicas=1))
    with transaction.atomic():
        outbox_enqueue(event_type="numbering.test.step.v1", aggregate_id="auth-1", data={"step": 1}, sequence=1)
    relays(auth_nats.url_for("relay"))
    wait_for(lambda: not OutboxEvent.objects.filter(published_at__isnull=True).exists(), what="outbox drained")

    with transaction.atomic(), rls_scope(platform=True):
        alice_numbers = [number_in(State.ASSIGNED, alice) for _ in range(2)]
        bob_numbers = [number_in(State.ASSIGNED, bob)]

    def send(tenant: Any, identity: str) -> Any:
        data = json.dumps(envelope(SUSPENDED, tenant.id)).encode()
        headers = {"Nats-Msg-Id": f"{tenant.id}-{identity}"}
        headers |= signed_headers(identity, settings.EVENT_PUBLISHER_KEYS[identity], SUSPENDED, data)
        return lambda nc: nc.jetstream().publish(SUSPENDED, data, headers=headers)

    _, errs = _as(auth_nats, "compliance", send(alice, "tenant-service"))
    assert errs == []
    _as(auth_nats, "compliance", send(bob, "compliance-service"))
    runner = AsyncRunner(EventConsumers(auth_nats.url_for("consumer"), fetch_timeout=0.4)).start()
    try:
        wait_for(lambda: len(runner.runnable.handled) == 2, what="two messages handled")
    finally:
        runner.stop()
    assert sorted(o for _, o in runner.runnable.handled) == ["applied", "invalid"]
    with transaction.atomic(), rls_scope(platform=True):
        assert Number.objects.filter(id__in=[n.id for n in alice_numbers], state=State.ASSIGNED).count() == 2
        assert not Number.objects.filter(id__in=[n.id for n in bob_numbers], state=State.ASSIGNED).exists()


def _config_is_valid(passwords: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **{f"NATS_{u.upper()}_PASSWORD": pw for u, pw in passwords.items()}}
    return subprocess.run(  # noqa: S603 - fixed binary, our arguments
        [NATS_BIN, "-t", "-c", str(CONFIG)], env=env, capture_output=True, text=True, timeout=10
    )


def test_generated_dev_passwords_always_parse_in_the_server_config(tmp_path: Path) -> None:
    """nats-server reads a $VARIABLE's value as a config value: a random hex password that
    happens to start with a digit ("5e3f...") is a number to it, and the server refuses to
    start (a fresh machine failed `make services` that way). The generator leads with letters."""
    digit_led = {user: "5e3f0a" for user in USERS}
    refused = _config_is_valid(digit_led)
    assert refused.returncode != 0, "the hazard is gone: nats-server now takes a digit-led password"
    script = Path(__file__).resolve().parents[2] / "deploy" / "local" / "nats_credentials.sh"
    for _ in range(20):
        out = subprocess.run(  # noqa: S603 - our script
            ["bash", str(script)], env={**os.environ, "NATS_AUTH_DIR": str(tmp_path)}, capture_output=True, text=True
        ).stdout
        passwords = {}
        for line in out.splitlines():
            name, value = line.split("=", 1)
            assert value.startswith("pw") and len(value) == 50, line
            passwords[name.removeprefix("NATS_").removesuffix("_PASSWORD").lower()] = value
        assert set(passwords) == set(USERS)
        checked = _config_is_valid(passwords)
        assert checked.returncode == 0, checked.stderr
