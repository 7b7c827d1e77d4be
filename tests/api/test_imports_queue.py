"""INVENTORY_IMPORT_ASYNC over HTTP with real commits (no test transaction): the upload is
queued to a real Celery broker transport, and when the broker cannot take it the import
runs in the request instead of staying PENDING forever."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import current_app
from django.db import transaction

from contracts.models import InventoryImport
from core.rls import rls_scope
from numbering.models import Number
from tests.api.test_imports_api import upload
from tests.contracts.conftest import HEADER, install_key, msisdn_rows, sign_csv
from tests.factories import InventoryPoolFactory, IssuerFactory
from tests.s3server import free_port


@pytest.fixture
def broker() -> Iterator[Any]:
    saved = {k: current_app.conf.get(k) for k in ("broker_url", "task_publish_retry", "broker_connection_timeout")}

    def use(url: str) -> None:
        current_app.conf.update(broker_url=url, task_publish_retry=False, broker_connection_timeout=1)
        _fresh_pools()

    yield use
    current_app.conf.update(saved)
    _fresh_pools()


def _fresh_pools() -> None:
    """Producer pools are cached per app; drop them so the next publish uses the new URL."""
    current_app._pool = None
    current_app.amqp._producer_pool = None


@pytest.fixture
def roshan_committed(committed: Any, settings: Any, tmp_path: Any) -> Any:
    settings.INVENTORY_IMPORT_DIR = tmp_path / "imports"
    settings.INVENTORY_IMPORT_ASYNC = True
    with transaction.atomic(), rls_scope(platform=True):
        InventoryPoolFactory(code="GENERAL_MSISDN", kind="MSISDN")
        issuer = IssuerFactory(code="ROSHAN", msisdn_prefixes=["79", "72"])
        install_key(issuer, "roshan")
    return issuer


def test_async_upload_is_queued_to_the_broker_and_answers_pending(roshan_committed: Any, broker: Any) -> None:
    broker("memory://")
    reply = upload(sign_csv(HEADER + msisdn_rows(3)))
    assert reply.status_code == 202 and reply.json()["status"] == "PENDING" and reply.json()["outcome"] is None
    assert InventoryImport.objects.get().status == "PENDING" and not Number.objects.exists()


def test_async_upload_runs_in_the_request_when_the_broker_is_down(
    roshan_committed: Any, broker: Any, caplog: Any
) -> None:
    broker(f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    reply = upload(sign_csv(HEADER + msisdn_rows(3)))
    assert reply.status_code == 202, reply.content
    assert reply.json()["status"] == "COMMITTED" and reply.json()["outcome"]["committed"]
    assert Number.objects.count() == 3
    assert "could not queue it to Celery" in caplog.text
