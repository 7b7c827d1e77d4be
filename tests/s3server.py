"""A private local S3-compatible server (moto, server mode) for the test session, and a
fresh Object-Lock bucket per test that wants one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from bench.ports import free_port


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def export_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export-keys")


@pytest.fixture
def worm_bucket(s3_server: str, export_key_dir: Path) -> Iterator[str]:
    """A new bucket (versioning + Object Lock COMPLIANCE 7 years) on the private server,
    with the settings pointing at it for the duration of the test."""
    from core.worm import provision_bucket

    bucket = f"exports-test-{uuid.uuid4().hex[:12]}"
    overrides: dict[str, Any] = {
        "S3_ENDPOINT_URL": s3_server,
        "S3_ACCESS_KEY_ID": "test",
        "S3_SECRET_ACCESS_KEY": "test",
        "S3_MAX_ATTEMPTS": 1,
        "S3_CONNECT_TIMEOUT_SECONDS": 2,
        "EXPORT_BUCKET": bucket,
        "SIGNING_PROVIDER": "local",
        "EXPORT_LOCAL_KEY_DIR": export_key_dir,
        "AUDIT_CHECKPOINTS": True,
    }
    with override_settings(**overrides):
        provision_bucket(bucket)
        yield bucket
