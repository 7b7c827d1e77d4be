"""Liveness and readiness endpoints for the web process (no auth: they reveal nothing)."""

from __future__ import annotations

from django.db import connections
from django.http import HttpRequest, JsonResponse
from django_redis import get_redis_connection


def livez(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception:  # noqa: BLE001 - readiness reports, it does not raise
        checks["postgres"] = "down"
    try:
        get_redis_connection("default").ping()
        checks["redis"] = "ok"
    except Exception:  # noqa: BLE001
        checks["redis"] = "down"
    ok = checks["postgres"] == "ok"  # Redis down degrades, it does not take us out
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
