"""contracts.services.import_dispatch: the one decision whether an import runs now or in
the Celery worker, with real kombu transports (in-memory, and an AMQP port nobody listens on)."""

from __future__ import annotations

from typing import Any

import pytest
from celery import current_app

from contracts.imports import import_create
from contracts.models import InventoryImport
from contracts.services import RUN_IMPORT_TASK, import_dispatch
from core.errors import ValidationError
from numbering.models import Number
from tests.api.test_imports_queue import broker  # noqa: F401 - the real-transport fixture
from tests.contracts.conftest import HEADER, msisdn_rows, sign_csv
from tests.s3server import free_port

pytestmark = pytest.mark.django_db


def upload(system: Any, rows: int = 3, start: int = 0) -> InventoryImport:
    signed = sign_csv(HEADER + msisdn_rows(rows, start=start))
    return import_create(issuer_code="ROSHAN", csv_file=signed.csv, signature=signed.signature, actor=system)


def published() -> list[tuple[str, str]]:
    """(task name, args) of every message waiting in the default queue of the broker."""
    found = []
    with current_app.connection_for_read() as conn:
        queue = conn.SimpleQueue(current_app.conf.task_default_queue)
        while True:
            try:
                message = queue.get(timeout=0.2)
            except queue.Empty:
                break
            found.append((message.headers["task"], message.headers["argsrepr"]))
            message.ack()
        queue.close()
    return found


def test_without_async_the_run_happens_now(roshan: Any, system: Any, settings: Any) -> None:
    settings.INVENTORY_IMPORT_ASYNC = False
    imp = upload(system)
    outcome = import_dispatch(imp.pk, actor=system)
    assert outcome is not None and outcome.committed and Number.objects.count() == 3
    preview = import_dispatch(upload(system, rows=2, start=100).pk, actor=system, dry_run=True)
    assert preview is not None and preview.dry_run and preview.status == "VERIFIED" and Number.objects.count() == 3


@pytest.mark.parametrize("task_loaded", [True, False], ids=["registered-task", "by-name"])
def test_with_async_the_run_is_queued_once_the_upload_commits(
    roshan: Any,
    system: Any,
    settings: Any,
    broker: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    task_loaded: bool,
) -> None:
    import contracts.tasks  # noqa: F401 - registers the task, as in the worker

    if not task_loaded:  # the web process need not import the tasks: it publishes by name
        monkeypatch.delitem(current_app.tasks, RUN_IMPORT_TASK)
    settings.INVENTORY_IMPORT_ASYNC = True
    broker("memory://")
    imp = upload(system)
    InventoryImport.objects.filter(pk=imp.pk).update(status="VERIFIED", processed_rows=3)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert import_dispatch(imp.pk, actor=system, mode="valid-rows") is None
    assert published() == []  # nothing leaves before the caller's transaction commits
    imp.refresh_from_db()
    assert (imp.status, imp.processed_rows, imp.mode) == ("PENDING", 0, "valid-rows")  # what the progress page shows
    for callback in callbacks:
        callback()
    assert published() == [(RUN_IMPORT_TASK, f"({imp.pk}, 'valid-rows', False)")]
    assert not Number.objects.exists()


def test_when_the_broker_refuses_the_run_happens_here(
    roshan: Any,
    system: Any,
    settings: Any,
    broker: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
    caplog: Any,
) -> None:
    settings.INVENTORY_IMPORT_ASYNC = True
    broker(f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    imp = upload(system)
    with django_capture_on_commit_callbacks(execute=True):
        assert import_dispatch(imp.pk, actor=system, dry_run=True) is None
    imp.refresh_from_db()
    assert imp.status == "VERIFIED" and imp.accepted_count == 3  # the preview ran in this process
    assert "could not queue it to Celery" in caplog.text and not Number.objects.exists()


def test_an_unknown_mode_is_refused_before_anything_changes(roshan: Any, system: Any, settings: Any) -> None:
    settings.INVENTORY_IMPORT_ASYNC = True
    imp = upload(system)
    InventoryImport.objects.filter(pk=imp.pk).update(status="VERIFIED")
    with pytest.raises(ValidationError, match="mode: 'fast'"):
        import_dispatch(imp.pk, actor=system, mode="fast")
    assert InventoryImport.objects.get(pk=imp.pk).status == "VERIFIED"
