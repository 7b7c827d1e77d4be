"""Numbers entering the inventory in bulk: the commit step of a signed inventory import
(contracts.imports) hands its checked rows to numbering, which owns the number table.

The rows are not passed through Python: an import may hold hundreds of thousands of them
and its memory stays bounded by a batch. The caller names a relation of its session (a
temp table or view) with the columns

    row_no, number, kind, issuer_id, block_id, pool_id, vanity, tier

and numbering turns each row into an AVAILABLE number with one INSERT … SELECT.
"""

from __future__ import annotations

import logging
import re

from django.db import connection, transaction

from core import clock
from numbering.lifecycle import State
from numbering.models import Number

logger = logging.getLogger(__name__)

# Autovacuum may be off (it is on some hosts), and a bulk load moves the planner's row
# estimates of the number table by a lot; below this many rows the old statistics are
# close enough and an ANALYZE is not worth its sampling.
ANALYZE_AFTER_ROWS = 1000
_RELATION = re.compile(r"^(pg_temp\.)?[a-z_][a-z0-9_]*$")


def numbers_add_imported(*, rows: str) -> int:
    """Insert every row of the relation `rows` as an AVAILABLE number (version 1, not a
    test number) in file order, inside the caller's transaction, and return how many were
    inserted. A number already in the inventory violates the unique index and aborts the
    caller's transaction: the importer marks those rows as duplicates before it calls."""
    if not connection.in_atomic_block:
        raise RuntimeError("numbers_add_imported must run inside the import's transaction")
    if not _RELATION.match(rows):
        raise ValueError(f"rows: {rows!r} is not a relation name")
    now = clock.now()
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {Number._meta.db_table} (number, kind, issuer_id, block_id, pool_id, vanity, vanity_tier,"
            " is_test, state, version, state_changed_at, created_at)"
            " SELECT r.number, r.kind, r.issuer_id, r.block_id, r.pool_id, r.vanity, r.tier, false, %s, 1, %s, %s"
            f" FROM {rows} r ORDER BY r.row_no",
            [State.AVAILABLE.value, now, now],
        )
        inserted = cur.rowcount
    if inserted >= ANALYZE_AFTER_ROWS:
        # After the commit, on its own: the statistics then describe committed rows, and
        # the import's transaction (and its advisory lock) is not held while PostgreSQL samples.
        transaction.on_commit(analyze_numbers, robust=True)
    return inserted


def analyze_numbers() -> None:
    """Refresh the planner statistics of the number table. The app role does not own the
    table (PostgreSQL 15 lets only the owner ANALYZE it), so this goes through the
    owner's SECURITY DEFINER function numbering_analyze_numbers() (migration 0006)."""
    with connection.cursor() as cur:
        cur.execute("SELECT numbering_analyze_numbers()")
    logger.info("analyzed %s after a bulk import", Number._meta.db_table)
