"""Steps 2b-2c of an import: every row is checked while the file streams, and the results
are copied in batches into a session temp table (memory stays bounded by the batch, not
the file). Duplicates inside the file and against the inventory are marked by SQL; the
counts and the per-row report (the preview) are read back from the same table."""

from __future__ import annotations

import csv
from typing import Any

from django.conf import settings
from django.db import connection

from contracts.imports.outcome import Refusal
from contracts.imports.rows import DUP_FILE, DUP_INVENTORY, RESULT, VALID, Row, RowChecker, check_header, lines
from contracts.imports.storage import csv_path
from contracts.models import InventoryImport

TEMP = "pg_temp.import_rows"
# The valid rows in the shape numbering.inventory.numbers_add_imported reads.
VALID_ROWS = "pg_temp.import_rows_valid"
_COPY_COLUMNS = ("row_no", "number", "kind", "vanity", "tier", "block", "pool_id", "status", "message")


def _create_temp_table() -> None:
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TEMP} CASCADE")
        cur.execute(
            "CREATE TEMP TABLE import_rows (row_no integer PRIMARY KEY, number text NOT NULL, kind text,"
            " vanity boolean, tier text, block text, pool_id bigint, status smallint NOT NULL, message text)"
        )


def drop_temp_table() -> None:
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TEMP} CASCADE")  # and the valid-rows view on it


def _flush(batch: list[Row]) -> None:
    if not batch:
        return
    with connection.cursor() as cur, cur.copy(f"COPY {TEMP} ({', '.join(_COPY_COLUMNS)}) FROM STDIN") as copy:
        for r in batch:
            copy.write_row((r.row_no, r.number, r.kind, r.vanity, r.tier, r.block, r.pool_id, r.status, r.message))
    batch.clear()


def _progress(imp: InventoryImport, processed: int, total: int | None = None) -> None:
    # Outside a transaction this commits at once, so the admin and the API see it move.
    fields: dict[str, Any] = {"processed_rows": processed}
    if total is not None:
        fields["total_rows"] = total
    InventoryImport.objects.filter(pk=imp.pk).update(**fields)


def validate_rows(imp: InventoryImport) -> None:
    """Stream the file into the temp table; duplicates inside the file are marked by SQL."""
    _create_temp_table()
    reader = csv.reader(lines(csv_path(imp)), strict=True)
    batch: list[Row] = []
    processed = 0
    try:
        checker = RowChecker(imp.issuer, check_header(next(reader, None)))
        for cells in reader:
            batch.append(checker.check(reader.line_num, cells))
            processed += 1
            if len(batch) >= settings.INVENTORY_IMPORT_BATCH_ROWS:
                _flush(batch)
                _progress(imp, processed)
    except csv.Error as exc:
        raise Refusal(f"row {reader.line_num}: malformed CSV ({exc})") from None
    _flush(batch)
    _progress(imp, processed, total=processed)
    with connection.cursor() as cur:
        cur.execute(f"CREATE INDEX ON {TEMP} (number)")
        cur.execute(f"ANALYZE {TEMP}")
        cur.execute(
            f"UPDATE {TEMP} r SET status = %s, message = 'row ' || r.row_no || ', column number: duplicate of row '"
            f" || d.first_row || ' in this file'"
            f" FROM (SELECT number, min(row_no) AS first_row FROM {TEMP} WHERE status = %s"
            f"       GROUP BY number HAVING count(*) > 1) d"
            f" WHERE r.status = %s AND r.number = d.number AND r.row_no > d.first_row",
            [DUP_FILE, VALID, VALID],
        )


def mark_inventory_duplicates() -> None:
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {TEMP} r SET status = %s,"
            f" message = 'row ' || r.row_no || ', column number: ' || n.number || ' is already in the inventory'"
            f" FROM numbering_number n WHERE r.status = %s AND n.number = r.number",
            [DUP_INVENTORY, VALID],
        )


def counts() -> dict[int, int]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT status, count(*) FROM {TEMP} GROUP BY status")
        return dict(cur.fetchall())


def report() -> list[dict[str, Any]]:
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT row_no, status, number, message FROM {TEMP} WHERE status <> %s ORDER BY row_no LIMIT %s",
            [VALID, settings.INVENTORY_IMPORT_REPORT_LIMIT],
        )
        return [
            {"row": row_no, "result": RESULT[status], "value": value, "message": message}
            for row_no, status, value, message in cur.fetchall()
        ]


def valid_block_ranges() -> list[tuple[str, str, str, str]]:
    """(block, kind, lowest number, highest number) of the valid rows, per block."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT block, kind, min(number), max(number) FROM {TEMP} WHERE status = %s GROUP BY block, kind"
            " ORDER BY block",
            [VALID],
        )
        return list(cur.fetchall())


def create_valid_rows_view(*, issuer_id: int) -> str:
    """The valid rows joined to their (now existing) blocks, in file order: the relation
    numbering.inventory.numbers_add_imported inserts from. Returns its name."""
    # A view cannot take bind parameters; both values are integers, so inlining is safe.
    with connection.cursor() as cur:
        cur.execute(
            f"CREATE OR REPLACE TEMP VIEW import_rows_valid AS"
            f" SELECT r.row_no, r.number, r.kind, b.issuer_id, b.id AS block_id, r.pool_id, r.vanity, r.tier"
            f" FROM {TEMP} r JOIN contracts_numberblock b ON b.issuer_id = {int(issuer_id)} AND b.name = r.block"
            f" WHERE r.status = {int(VALID)}"
        )
    return VALID_ROWS
