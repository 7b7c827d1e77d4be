"""Issue 13 item 10 (ADR 1354): stored import uploads are purged after their retention;
the import records (SHA-256, outcome, report) stay, and a purged import cannot be run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command

from contracts.imports import csv_path, import_create, import_file, run_import, signature_path
from contracts.imports.retention import purge_import_uploads
from contracts.models import InventoryImport
from core import errors, locks
from core.clock import FakeClock
from tests.contracts.conftest import HEADER, msisdn_rows, sign_csv

pytestmark = pytest.mark.django_db
S = InventoryImport.Status


@pytest.fixture
def retention(settings: Any) -> None:
    settings.INVENTORY_IMPORT_RETENTION_DAYS = 90
    settings.INVENTORY_IMPORT_UNCOMMITTED_RETENTION_DAYS = 7


def _files(imp_id: int) -> tuple[bool, bool]:
    imp = InventoryImport(pk=imp_id)
    return csv_path(imp).exists(), signature_path(imp).exists()


def _uploads(roshan: Any, system: Any) -> dict[str, int]:
    good = sign_csv(HEADER + msisdn_rows(3))
    committed = import_file(issuer_code="ROSHAN", csv_file=good.csv, signature=good.signature, actor=system)
    dry = sign_csv(HEADER + msisdn_rows(2, start=100))
    dry_run = import_file(issuer_code="ROSHAN", csv_file=dry.csv, signature=dry.signature, actor=system, dry_run=True)
    bad = sign_csv(HEADER + msisdn_rows(2, start=200))
    refused = import_file(issuer_code="ROSHAN", csv_file=bad.csv, signature=b"not a signature", actor=system)
    other = sign_csv(HEADER + msisdn_rows(2, start=300))
    pending = import_create(issuer_code="ROSHAN", csv_file=other.csv, signature=other.signature, actor=system)
    ids = {"committed": committed.import_id, "dry_run": dry_run.import_id, "refused": refused.import_id}
    ids["pending"] = pending.pk
    statuses = {k: InventoryImport.objects.get(pk=v).status for k, v in ids.items()}
    assert statuses == {"committed": S.COMMITTED, "dry_run": S.VERIFIED, "refused": S.REJECTED, "pending": S.PENDING}
    assert all(_files(i) == (True, True) for i in ids.values())
    return ids


def test_uploads_are_purged_after_their_retention_and_the_records_stay(
    roshan: Any, system: Any, fake_clock: FakeClock, retention: None
) -> None:
    ids = _uploads(roshan, system)
    before = {i: InventoryImport.objects.get(pk=i) for i in ids.values()}

    fake_clock.advance(timedelta(days=6))
    assert purge_import_uploads().purged == 0
    assert all(_files(i) == (True, True) for i in ids.values())

    # Past 7 days: refused, dry-run-only and abandoned uploads go; the committed one stays.
    fake_clock.advance(timedelta(days=2))
    assert purge_import_uploads().purged == 3
    for name in ("dry_run", "refused", "pending"):
        assert _files(ids[name]) == (False, False), name
    assert _files(ids["committed"]) == (True, True)

    # Past 90 days the committed upload goes too; running again is a no-op.
    fake_clock.advance(timedelta(days=83))
    assert purge_import_uploads().purged == 1
    assert _files(ids["committed"]) == (False, False)
    assert purge_import_uploads().purged == 0

    for pk, old in before.items():
        now = InventoryImport.objects.get(pk=pk)
        assert now.purged_at is not None
        assert (now.status, now.file_sha256, now.report, now.accepted_count) == (
            old.status,
            old.file_sha256,
            old.report,
            old.accepted_count,
        )


def test_a_running_import_keeps_its_upload(roshan: Any, system: Any, fake_clock: FakeClock, retention: None) -> None:
    other = sign_csv(HEADER + msisdn_rows(2, start=400))
    imp = import_create(issuer_code="ROSHAN", csv_file=other.csv, signature=other.signature, actor=system)
    InventoryImport.objects.filter(pk=imp.pk).update(status=S.RUNNING)
    fake_clock.advance(timedelta(days=365))
    assert purge_import_uploads().purged == 0
    assert _files(imp.pk) == (True, True)


def test_a_purged_import_cannot_be_run_and_its_file_is_still_recognised(
    roshan: Any, system: Any, fake_clock: FakeClock, retention: None
) -> None:
    good = sign_csv(HEADER + msisdn_rows(3, start=500))
    first = import_file(issuer_code="ROSHAN", csv_file=good.csv, signature=good.signature, actor=system)
    dry = import_create(issuer_code="ROSHAN", csv_file=good.csv, signature=good.signature, actor=system)
    fake_clock.advance(timedelta(days=91))
    assert purge_import_uploads().purged == 2

    with pytest.raises(errors.ImportRefusedError, match="purged"):
        run_import(dry.pk)
    assert InventoryImport.objects.get(pk=dry.pk).status == S.PENDING
    # The same file uploaded again is still a no-op: the SHA-256 outlived the file.
    again = import_file(issuer_code="ROSHAN", csv_file=good.csv, signature=good.signature, actor=system)
    assert (again.status, first.status) == (S.ALREADY_IMPORTED, S.COMMITTED)


def test_one_purge_at_a_time_and_the_command(
    roshan: Any, system: Any, fake_clock: FakeClock, retention: None, capsys: Any
) -> None:
    ids = _uploads(roshan, system)
    fake_clock.advance(timedelta(days=8))
    with locks.job_lock("purge_import_uploads") as held:
        assert held
        # The lock is a session lock: another run on another connection must skip.
        from concurrent.futures import ThreadPoolExecutor

        from django.db import connection

        def other_run() -> bool:
            try:
                return purge_import_uploads().skipped
            finally:
                connection.close()

        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(other_run).result() is True
    assert _files(ids["refused"]) == (True, True)

    call_command("purge_import_uploads")
    assert "purged=3" in capsys.readouterr().out
    assert _files(ids["refused"]) == (False, False)
