"""A PostgreSQL that stops answering at the network level must cost a bounded wait, not the
kernel's retry budget (ADR 1504). A TCP peer that completes the handshake and then never
speaks is what a frozen server looks like, and nothing in the process gets an answer."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connections
from django.db.backends.postgresql.base import DatabaseWrapper


@pytest.fixture
def silent_peer() -> Iterator[int]:
    """Listens (the kernel accepts into the backlog) and never reads or writes a byte."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_every_alias_carries_the_network_bounds_and_a_urls_own_options_win() -> None:
    for alias, database in settings.DATABASES.items():
        options = database["OPTIONS"]
        assert options["connect_timeout"] == str(settings.DATABASE_CONNECT_TIMEOUT_SECONDS), alias
        assert options["tcp_user_timeout"] == str(settings.DATABASE_TCP_USER_TIMEOUT_MS), alias
        assert options["keepalives"] == "1", alias
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        " print(s.DATABASES['default']['OPTIONS']['connect_timeout'], s.DATABASES['default']['OPTIONS']['keepalives'])"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": "postgres://numbering_app@127.0.0.1:5432/numbering?connect_timeout=1",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]


def test_a_server_that_never_answers_fails_the_connection_within_the_connect_timeout(
    silent_peer: int, django_db_blocker: Any
) -> None:
    wrapper = DatabaseWrapper(
        {**connections.databases["default"], "HOST": "127.0.0.1", "PORT": str(silent_peer), "CONN_MAX_AGE": 0},
        alias="silent",
    )
    started = time.monotonic()
    with django_db_blocker.unblock(), pytest.raises(OperationalError):
        wrapper.ensure_connection()
    took = time.monotonic() - started
    # libpq waits connect_timeout per address; without it this hangs until the peer closes.
    assert settings.DATABASE_CONNECT_TIMEOUT_SECONDS - 0.5 <= took < settings.DATABASE_CONNECT_TIMEOUT_SECONDS + 3


@pytest.mark.django_db(databases=["default", "owner"])
def test_the_servers_side_of_every_session_drops_a_client_that_vanished() -> None:
    """A session whose client vanished in a partition must end (and free its advisory locks:
    the relay's partitions) in seconds, not after the kernel's 2 h keepalive."""
    for alias in ("default", "owner"):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_count'),"
                " current_setting('tcp_user_timeout')"
            )
            assert cursor.fetchone() == ("5", "3", str(settings.DATABASE_TCP_USER_TIMEOUT_MS)), alias


def test_the_chaos_forwarder_probes_like_the_server() -> None:
    """The postgres-partition drill's forwarder stands in for the network: its client-side
    socket must carry the server's probes (one table, config/db_network.py)."""
    from bench.chaos import netfault

    class Writer:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, name: str) -> socket.socket:
            return self.sock

    with socket.socket() as sock:
        netfault._probe_like_the_server(Writer(sock))  # type: ignore[arg-type]
        probes = [
            sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, o))
            for o in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT")
        ]
        assert probes == [
            int(settings.DATABASES["default"]["OPTIONS"][k])
            for k in ("keepalives_idle", "keepalives_interval", "keepalives_count")
        ]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == settings.DATABASE_TCP_USER_TIMEOUT_MS


def test_the_forwarder_reads_the_user_timeout_within_the_settings_bounds() -> None:
    """The drills' forwarder has no settings; it reads DATABASE_TCP_USER_TIMEOUT_MS through
    the one rule the settings use, so a value the service would refuse is refused there too."""
    from config import db_network

    low, high = db_network.TCP_USER_TIMEOUT_MS_BOUNDS
    assert db_network.tcp_user_timeout_ms(None) == db_network.DEFAULT_TCP_USER_TIMEOUT_MS
    assert db_network.tcp_user_timeout_ms(" ") == db_network.DEFAULT_TCP_USER_TIMEOUT_MS
    assert db_network.tcp_user_timeout_ms(str(low)) == low
    assert db_network.tcp_user_timeout_ms(str(high)) == high
    for bad in (str(low - 1), str(high + 1), "10s"):
        with pytest.raises(ValueError, match="DATABASE_TCP_USER_TIMEOUT_MS"):
            db_network.tcp_user_timeout_ms(bad)
