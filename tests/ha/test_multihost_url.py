"""DATABASE_URL as a libpq multi-host URL (ADR 1400): every region listed, libpq keeps the
read-write one; a multi-host URL without target_session_attrs could write to a replica, so
it is refused at start."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import parse_database_url
from events import relay

URL = (
    "postgres://numbering_app@10.0.0.1:5432,10.1.0.1:5433,[fd00::1]:5434/numbering"
    "?target_session_attrs=read-write&connect_timeout=2"
)


def test_multi_host_url_becomes_host_and_port_lists() -> None:
    entry = parse_database_url("DATABASE_URL", URL)
    assert entry["HOST"] == "10.0.0.1,10.1.0.1,fd00::1"
    assert entry["PORT"] == "5432,5433,5434"
    assert entry["OPTIONS"] == {"target_session_attrs": "read-write", "connect_timeout": "2"}
    assert entry["NAME"] == "numbering" and entry["USER"] == "numbering_app"


def test_hosts_without_port_default_to_5432() -> None:
    entry = parse_database_url("DATABASE_URL", "postgres://u@a,b:6000/db?target_session_attrs=primary")
    assert entry["HOST"] == "a,b"
    assert entry["PORT"] == "5432,6000"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://u@a:1,b:2/db", "needs target_session_attrs=read-write"),
        ("postgres://u@a:1,b:2/db?target_session_attrs=any", "needs target_session_attrs=read-write"),
        ("postgres://u@a:1/db?target_sesion_attrs=read-write", "unknown option 'target_sesion_attrs'"),
        ("postgres://u@a:1,b:x/db?target_session_attrs=read-write", "port is not a number"),
        ("postgres://u@a:0/db", "between 1 and 65535"),
    ],
)
def test_bad_multi_host_urls_name_the_variable_and_rule(url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message) as info:
        parse_database_url("DATABASE_URL", url)
    assert "DATABASE_URL=" in str(info.value)


def test_a_replica_url_may_ask_for_a_standby() -> None:
    entry = parse_database_url(
        "DATABASE_REPLICA_URL", "postgres://u@a:1,b:2/db?target_session_attrs=prefer-standby", writable=False
    )
    assert entry["OPTIONS"] == {"target_session_attrs": "prefer-standby"}


def test_relay_dsn_carries_the_libpq_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    entry = parse_database_url("DATABASE_URL", URL)
    options = {**entry["OPTIONS"], "options": "-c statement_timeout=1"}  # type: ignore[dict-item]
    monkeypatch.setitem(settings.DATABASES, "ha_test", {**entry, "OPTIONS": options})
    dsn = relay.database_dsn("ha_test")
    assert "host=10.0.0.1,10.1.0.1,fd00::1" in dsn
    assert "port=5432,5433,5434" in dsn
    assert "target_session_attrs=read-write" in dsn
    assert "statement_timeout" not in dsn  # the server-side option stays Django's
