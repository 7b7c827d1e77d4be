from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_str, parse_database_url
from core.logging import JsonFormatter, MaskNumbersFilter, RequestIdFilter, mask_number
from core.request_context import get_request_id, request_id_scope


def test_env_helpers_fail_loudly_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BOOL", "maybe")
    monkeypatch.setenv("X_INT", "ten")
    monkeypatch.setenv("X_SMALL", "0")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL"):
        env_bool("X_BOOL")
    with pytest.raises(ImproperlyConfigured, match="X_INT"):
        env_int("X_INT", 1)
    with pytest.raises(ImproperlyConfigured, match="X_SMALL.*minimum"):
        env_int("X_SMALL", 1, minimum=1)
    with pytest.raises(ImproperlyConfigured, match="X_MISSING is required"):
        env_str("X_MISSING")
    monkeypatch.setenv("X_BOOL", "yes")
    assert env_bool("X_BOOL") is True
    assert env_int("X_UNSET", 7) == 7


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "scheme"),
        ("postgres://u@h/", "database name"),
        ("postgres://h/db", "user name"),
        ("postgres://u@h:port/db", "port"),
    ],
)
def test_database_urls_are_validated(url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        parse_database_url("DATABASE_URL", url)


def test_a_database_url_becomes_a_django_entry() -> None:
    entry = parse_database_url("DATABASE_URL", "postgres://app:s%40cret@db.local:6543/numbering")
    assert entry["USER"] == "app" and entry["PASSWORD"] == "s@cret"
    assert (entry["HOST"], entry["PORT"], entry["NAME"]) == ("db.local", "6543", "numbering")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NUMBERING_ENV": "production"}, "DJANGO_SECRET_KEY is required"),
        ({"NUMBERING_ENV": "staging"}, "NUMBERING_ENV"),
        ({"DJANGO_DEBUG": "perhaps"}, "DJANGO_DEBUG"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE"),
        ({"DATABASE_URL": "<owner url>"}, "different roles"),
        ({"DATABASE_REPLICA_URL": "<owner url>"}, "must use the app role"),
        ({"DATABASE_URL": "postgres://numbering_app@127.0.0.1:5432/elsewhere"}, "same database"),
        # issue 13 items 5 and 6 (ADRs 1352, 1355)
        ({"DATABASE_TENANT_URL": "<owner url>"}, "must use its own role"),
        ({"DATABASE_TENANT_URL": "postgres://numbering_tenant@127.0.0.1:5432/elsewhere"}, "same database as"),
        ({"NUMBERING_ENV": "test", "TENANT_REQUESTS_ON_TENANT_ROLE": "perhaps"}, "TENANT_REQUESTS_ON_TENANT_ROLE"),
        ({"NATS_RELAY_URL": "http://relay:pw@127.0.0.1:4223"}, "NATS_RELAY_URL must start with"),
    ],
)
def test_bad_configuration_stops_the_process_at_start(env: dict[str, str], message: str) -> None:
    owner_url = os.environ.get("DATABASE_OWNER_URL", "postgres://numbering_owner@127.0.0.1:5432/numbering")
    env = {k: owner_url if v == "<owner url>" else v for k, v in env.items()}
    child_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", **env}
    child_env.pop("NUMBERING_ENV", None) if "NUMBERING_ENV" not in env else None
    proc = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert message in proc.stderr


@pytest.mark.parametrize(
    ("raw", "masked"), [("+93791234567", "+93791****67"), ("0791234567", "0791****67"), ("4040", "4***"), ("7", "*")]
)
def test_numbers_are_masked(raw: str, masked: str) -> None:
    assert mask_number(raw) == masked


def test_log_lines_are_json_with_request_id_and_no_full_number() -> None:
    record = logging.LogRecord(
        "numbering", logging.INFO, __file__, 1, "reserved %s for %s", ("+93791234567", "acme"), None
    )
    record.extra_number = "0791234567"
    with request_id_scope("req-123"):
        RequestIdFilter().filter(record)
        MaskNumbersFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "reserved +93791****67 for acme"
    assert line["request_id"] == "req-123"
    assert line["extra_number"] == "0791****67"
    assert "+93791234567" not in json.dumps(line)


def test_a_malformed_request_id_is_replaced() -> None:
    with request_id_scope("bad id with spaces\n") as rid:
        assert rid != "bad id with spaces\n" and get_request_id() == rid
    assert get_request_id() == ""


@pytest.mark.parametrize(
    ("env", "bound"),
    [
        ({"GRPC_POOL": "mutations"}, True),
        ({"GRPC_POOL": "mutations", "DATABASE_SERVER_SIDE_BINDING": "0"}, False),
        ({"GRPC_POOL": "hot"}, False),
        ({"GRPC_POOL": "all"}, False),
        ({"GRPC_POOL": "all", "DATABASE_SERVER_SIDE_BINDING": "1"}, True),
    ],
)
def test_the_mutation_pool_binds_parameters_server_side(env: dict[str, str], bound: bool) -> None:
    """ADR 1100 amendment of 2026-12-03: the mutation pool prepares its statements, on the app
    connection and on the tenant role's (production names it with DATABASE_TENANT_URL)."""
    child_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "NUMBERING_ENV": "dev", **env}
    child_env.pop("DATABASE_SERVER_SIDE_BINDING", None) if "DATABASE_SERVER_SIDE_BINDING" not in env else None
    app = os.environ.get("DATABASE_URL", "postgres://numbering_app@127.0.0.1:5432/numbering")
    child_env["DATABASE_TENANT_URL"] = app.replace("numbering_app@", "numbering_tenant@", 1)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s;"
            " print([s.DATABASES[a]['OPTIONS'].get('server_side_binding', False) for a in ('default', 'tenant')])",
        ],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str([bound, bound])
