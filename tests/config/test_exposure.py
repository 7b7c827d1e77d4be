"""Issue 13 item 10: exposure on the web and gRPC ports.

- production settings pass `manage.py check --deploy` (HSTS, SSL redirect, secure cookies);
- Swagger UI is served from pinned local assets (drf-spectacular-sidecar), not a CDN @latest;
- the gRPC metrics server listens on METRICS_BIND_ADDRESS, not on every interface.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from bench.ports import free_port
from grpc_server import server as grpc_server_module

ROOT = Path(__file__).resolve().parents[2]


def _production_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "DATABASE_URL", "REDIS_URL"}}
    return {
        **keep,
        "NUMBERING_ENV": "production",
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "numbering.example",
        "JWT_JWKS_URL": "https://idp.example/.well-known/jwks.json",
        "JWT_ISSUER": "https://idp.example",
        "VAULT_ADDR": "https://vault.example",
        "DATABASE_OWNER_URL": os.environ.get(
            "DATABASE_OWNER_URL", "postgres://numbering_owner@127.0.0.1:5432/numbering"
        ),
        # Production wants the Celery broker on its own noeviction Redis (ADR 1801).
        "CELERY_BROKER_URL": "redis://broker.example:6379/0",
        **extra,
    }


def _check_deploy(**extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_check_deploy() -> None:
    result = _check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_catches_a_production_without_hsts_or_redirect() -> None:
    """The check is not vacuous: switching the controls off makes it fail, naming them."""
    result = _check_deploy(DJANGO_SECURE_HSTS_SECONDS="0", DJANGO_SECURE_SSL_REDIRECT="0")
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout and "security.W008" in result.stderr + result.stdout


@pytest.mark.django_db
def test_swagger_ui_is_served_from_pinned_local_assets(client: Any) -> None:
    html = client.get("/api/docs/").content.decode()
    assert "cdn.jsdelivr.net" not in html and "@latest" not in html and "unpkg.com" not in html
    assert f"{settings.STATIC_URL}drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    import drf_spectacular_sidecar

    assert (Path(drf_spectacular_sidecar.__file__).parent / "static/drf_spectacular_sidecar/swagger-ui-dist").is_dir()


def _listening_address(port: int) -> str:
    """The local address a TCP socket on `port` listens on, from /proc/net/tcp (IPv4)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # LISTEN
            return socket.inet_ntoa(bytes.fromhex(address)[::-1])
    raise AssertionError(f"nothing listens on {port}")


def test_grpc_metrics_server_honours_metrics_bind_address(settings: Any) -> None:
    port = free_port()
    settings.METRICS_BIND_ADDRESS = "127.0.0.1"
    grpc_server_module.start_metrics(port)
    assert _listening_address(port) == "127.0.0.1"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
        assert response.status == 200


@pytest.mark.django_db
def test_public_web_port_does_not_serve_metrics(client: Any) -> None:
    assert client.get("/metrics").status_code == 404


def test_web_process_serves_metrics_on_its_own_bind(tmp_path: Path) -> None:
    """The WSGI module (what gunicorn and runserver load) starts /metrics on
    METRICS_BIND_ADDRESS:WEB_METRICS_PORT, with the django-prometheus series in it."""
    port = free_port()
    script = (
        "import time, urllib.request\n"
        "from config.wsgi import application\n"
        f"body = urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode()\n"
        "assert 'django_http_requests' in body, body[:500]\n"
        "print('ok')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "WEB_METRICS_PORT": str(port)}
    env["METRICS_BIND_ADDRESS"] = "127.0.0.1"
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr


def test_start_web_metrics_is_off_with_port_zero_and_idempotent() -> None:
    from config import web_metrics

    web_metrics._port = None  # another test may have imported config.wsgi in this process
    assert web_metrics.start_web_metrics(port=0) is None
    port = free_port()
    try:
        assert web_metrics.start_web_metrics(port=port, addr="127.0.0.1") == port
        assert web_metrics.start_web_metrics(port=port + 1, addr="127.0.0.1") == port  # once per process
        assert _listening_address(port) == "127.0.0.1"
        readings = web_metrics._readings
        web_metrics._port = None
        assert web_metrics.start_web_metrics(port=port, addr="127.0.0.1") is None  # busy: warn, not crash
    finally:
        web_metrics._port = None
        if web_metrics._readings is not None:
            web_metrics._readings.stop()
    assert readings is not None and readings._thread is not None and not readings._thread.is_alive()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/admin/v1/imports/", "/admin/contracts/inventoryimport/upload/"])
def test_oversize_upload_is_refused_before_it_is_read(client: Any, settings: Any, path: str) -> None:
    """413 from the declared length alone: no authentication, no CSRF check, no spooling
    happened first (the body is never read)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.INVENTORY_IMPORT_MAX_BYTES = 1024
    big = SimpleUploadedFile("inventory.csv", b"x" * (1024 + 70 * 1024), content_type="text/csv")
    reply = client.post(path, {"csv": big})
    assert reply.status_code == 413
    assert reply.json()["code"] == "REQUEST_TOO_LARGE" and "INVENTORY_IMPORT_MAX_BYTES" in reply.json()["detail"]
    small = SimpleUploadedFile("inventory.csv", b"number\n", content_type="text/csv")
    assert client.post(path, {"csv": small}).status_code != 413  # reaches authentication as before


def test_multipart_without_a_length_is_411() -> None:
    from django.test import RequestFactory

    from core.upload_limit import UploadSizeLimitMiddleware

    request = RequestFactory().generic("POST", "/api/admin/v1/imports/")
    request.META["CONTENT_TYPE"] = "multipart/form-data; boundary=x"  # chunked: no CONTENT_LENGTH
    request.META.pop("CONTENT_LENGTH", None)
    reply = UploadSizeLimitMiddleware(lambda r: None)(request)  # type: ignore[arg-type,return-value]
    assert reply.status_code == 411


def test_a_malformed_content_length_is_400_not_500(client: Any) -> None:
    """django-prometheus reads Content-Length as an int: a hostile `Content-Length: z` was a 500."""
    for header in ({"CONTENT_LENGTH": "z"}, {"HTTP_CONTENT_LENGTH": "z"}):
        response = client.get("/api/admin/v1/numbers/", HTTP_AUTHORIZATION="Bearer x", **header)
        assert response.status_code == 400, header
        body = response.json()
        assert body["code"] == "VALIDATION_ERROR" and "Content-Length" in body["detail"]
        assert body["title"] == "Bad Request" and body["request_id"]  # the documented problem shape


def test_a_forged_host_header_is_a_problem_json_400(client: Any) -> None:
    response = client.get("/api/admin/v1/numbers/", HTTP_HOST="z", HTTP_AUTHORIZATION="Bearer x")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Bad Request"
