"""No PostgreSQL primary (a failover, issue 14): every API answer is 503 problem+json with
Retry-After, never a 500 — including when the request transaction itself cannot open, before
DRF's exception handler runs (the postgres-failover chaos drill found those 500s)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.db import connections

from bench.ports import free_port
from tests.api.conftest import make_token


def _closed_port() -> int:
    return free_port()  # nothing listens there


@pytest.fixture
def no_database(committed: Any) -> Any:
    conn = connections["default"]
    saved = dict(conn.settings_dict)
    conn.close()
    conn.settings_dict["HOST"], conn.settings_dict["PORT"] = "127.0.0.1", str(_closed_port())
    yield
    conn.close()
    conn.settings_dict.clear()
    conn.settings_dict.update(saved)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/tenant/v1/numbers/available/", None),
        ("POST", "/api/tenant/v1/reservations/", {"count": 1}),
        ("GET", "/api/admin/v1/numbers/", None),
    ],
)
def test_no_database_is_503_with_retry_after(api: Any, no_database: Any, method: str, path: str, body: Any) -> None:
    roles = "numbering.admin" if "/admin/" in path else "tenant.admin"
    token = make_token(roles, None if "/admin/" in path else uuid.uuid4())
    reply = api.call(method, path, token, body, headers={"Idempotency-Key": "k-1"} if method == "POST" else None)
    assert reply.status == 503, reply.body[:300]
    assert reply.headers.get("Retry-After") == "1"
    problem = json.loads(reply.body)
    assert problem["code"] == "UNAVAILABLE" and problem["status"] == 503
