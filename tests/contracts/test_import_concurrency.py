"""Concurrent imports (real threads, real commits): the advisory lock and the re-checks
inside the commit transaction keep the inventory exact."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from contracts.imports import import_file
from contracts.models import InventoryImport
from core.actors import Actor
from core.rls import rls_scope
from numbering.models import Number
from tests.contracts.conftest import HEADER, install_key, msisdn_rows, sign_csv
from tests.factories import InventoryPoolFactory, IssuerFactory


def _race(files: list) -> list:
    barrier = threading.Barrier(len(files))
    results: list = [None] * len(files)

    def work(i: int, signed) -> None:
        try:
            barrier.wait()
            results[i] = import_file(
                issuer_code="ROSHAN", csv_file=signed.csv, signature=signed.signature, actor=Actor.system(f"t{i}")
            )
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i, f)) for i, f in enumerate(files)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def roshan_committed(committed, settings, tmp_path):
    settings.INVENTORY_IMPORT_DIR = tmp_path / "imports"
    InventoryPoolFactory(code="GENERAL_MSISDN", kind="MSISDN")
    install_key(IssuerFactory(code="ROSHAN", msisdn_prefixes=["79", "72"]), "roshan")


def _numbers() -> int:
    with transaction.atomic(), rls_scope(platform=True):
        return Number.objects.count()


def test_the_same_file_imported_twice_at_once_commits_once(roshan_committed):
    signed = sign_csv(HEADER + msisdn_rows(2000))
    results = _race([signed, signed])
    assert sorted(r.status for r in results) == ["ALREADY_IMPORTED", "COMMITTED"], results
    assert _numbers() == 2000
    assert InventoryImport.objects.filter(status="COMMITTED").count() == 1


def test_overlapping_files_at_once_never_import_a_number_twice(roshan_committed):
    first = sign_csv(HEADER + msisdn_rows(1000))
    second = sign_csv(HEADER + msisdn_rows(1000, start=500, block="R-2026-02"))
    results = _race([first, second])
    statuses = sorted(r.status for r in results)
    assert statuses == ["COMMITTED", "REJECTED"], results
    loser = next(r for r in results if r.status == "REJECTED")
    assert loser.duplicates == 500 and "nothing imported" in loser.message
    assert _numbers() == 1000


def test_the_same_import_run_twice_at_once_stays_committed(roshan_committed):
    """A redelivered task (the worker died, or the broker's visibility timeout passed while a
    worker still ran it; ADR 1502) runs the SAME import record again, concurrently. One run
    commits; the other must end as a no-op and never overwrite COMMITTED with REJECTED (its
    rows are all in the inventory by then)."""
    from contracts.imports import import_create, run_import

    signed = sign_csv(HEADER + msisdn_rows(3000))
    imp = import_create(issuer_code="ROSHAN", csv_file=signed.csv, signature=signed.signature, actor=Actor.system("t"))
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = run_import(imp.pk)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(not isinstance(r, Exception) for r in results), results
    imp.refresh_from_db()
    assert imp.status == "COMMITTED" and imp.accepted_count == 3000, (imp.status, imp.error)
    assert _numbers() == 3000
    # Then a third delivery, after the fact: a no-op that leaves the record as it is.
    again = run_import(imp.pk)
    imp.refresh_from_db()
    assert again.noop and imp.status == "COMMITTED"
