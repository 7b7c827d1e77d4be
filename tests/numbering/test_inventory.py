"""numbering.inventory.numbers_add_imported: the bulk INSERT behind a signed import's
commit, against real PostgreSQL under the app role."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from numbering import inventory
from numbering.inventory import ANALYZE_AFTER_ROWS, analyze_numbers, numbers_add_imported
from numbering.models import Number
from tests.factories import BlockFactory, InventoryPoolFactory, IssuerFactory, NumberFactory

ROWS = "pg_temp.inventory_rows"


def stage(numbers: list[str], *, block: Any, pool: Any = None, start: int = 1) -> str:
    """The relation an importer hands over: one row per number, in file order."""
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {ROWS}")
        cur.execute(
            "CREATE TEMP TABLE inventory_rows (row_no integer, number text, kind text, issuer_id bigint,"
            " block_id bigint, pool_id bigint, vanity boolean, tier text)"
        )
        with cur.copy(f"COPY {ROWS} FROM STDIN") as copy:
            for i, number in enumerate(numbers, start=start):
                copy.write_row((i, number, "MSISDN", block.issuer_id, block.pk, pool.pk if pool else None, False, ""))
    return ROWS


@pytest.fixture
def block(db: Any) -> Any:
    return BlockFactory(issuer=IssuerFactory(code="ROSHAN"), name="R-1")


def msisdns(count: int, start: int = 0) -> list[str]:
    return [f"+9379{start + i:07d}" for i in range(count)]


def test_rows_become_available_numbers_in_their_block_and_pool(block: Any, fake_clock: Any) -> None:
    pool = InventoryPoolFactory(code="GENERAL_MSISDN", kind="MSISDN")
    with transaction.atomic():
        assert numbers_add_imported(rows=stage(msisdns(3), block=block, pool=pool)) == 3
    numbers = list(Number.objects.order_by("id"))
    assert [n.number for n in numbers] == msisdns(3)  # file order
    for n in numbers:
        assert (n.state, n.version, n.is_test, n.kind) == ("AVAILABLE", 1, False, "MSISDN")
        assert (n.issuer_id, n.block_id, n.pool_id) == (block.issuer_id, block.pk, pool.pk)
        assert n.created_at == n.state_changed_at == fake_clock.now()


def test_a_number_already_in_the_inventory_aborts_the_whole_insert(block: Any) -> None:
    NumberFactory(number="+93790000001", issuer=block.issuer)
    with pytest.raises(IntegrityError), transaction.atomic():
        numbers_add_imported(rows=stage(msisdns(3), block=block))
    assert list(Number.objects.values_list("number", flat=True)) == ["+93790000001"]


def test_it_runs_inside_the_callers_transaction(block: Any) -> None:
    with transaction.atomic():
        assert numbers_add_imported(rows=stage(msisdns(4), block=block)) == 4
        assert Number.objects.count() == 4  # visible to the caller before it commits
        transaction.set_rollback(True)  # the importer refuses after all
    assert not Number.objects.exists()


def test_outside_a_transaction_it_refuses(committed: Any) -> None:  # real autocommit, no test transaction
    with pytest.raises(RuntimeError, match="inside the import's transaction"):
        numbers_add_imported(rows=ROWS)
    assert not Number.objects.exists()


def test_only_a_relation_name_is_accepted(block: Any) -> None:
    with pytest.raises(ValueError, match="not a relation name"), transaction.atomic():
        numbers_add_imported(rows="inventory_rows; DROP TABLE numbering_number")


def _reltuples() -> float:
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples FROM pg_class WHERE oid = 'numbering_number'::regclass")
        return float(cur.fetchone()[0])


def test_a_bulk_load_analyzes_the_number_table_after_commit(
    block: Any, django_capture_on_commit_callbacks: Any
) -> None:
    analyze_numbers()  # statistics of the table as it is now (empty)
    assert _reltuples() == 0
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        numbers_add_imported(rows=stage(msisdns(ANALYZE_AFTER_ROWS), block=block))
    assert analyze_numbers in callbacks
    # The owner's function really ran ANALYZE (the app role alone would be skipped).
    assert _reltuples() == ANALYZE_AFTER_ROWS


def test_a_small_import_does_not_analyze(
    block: Any, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inventory, "ANALYZE_AFTER_ROWS", 5)
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        numbers_add_imported(rows=stage(msisdns(4), block=block))
    assert callbacks == []
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        numbers_add_imported(rows=stage(msisdns(5, start=100), block=block))
    assert callbacks == [analyze_numbers]
