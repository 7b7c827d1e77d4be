"""The only module that writes compare-and-set SQL (DESIGN §2.2).

Every state change of a number is one UPDATE that succeeds only from the expected state
(and version, when the caller sent one) with the transition's guards. PostgreSQL's row
lock serialises concurrent writers; the loser re-evaluates the WHERE clause and gets
zero rows, and the service then reads the row once to classify the refusal.

The UPDATE returns the whole row (no re-read), and the action's side rows (its reservation
or lease INSERT/UPDATE) ride in the same statement as data-modifying CTEs over `cas`, so
they happen exactly when the CAS wins (ADR 1100). A new guard is one more entry in
GUARD_SQL (a condition on `n`, the number row, with named parameters).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from core.sqlbatch import Fragment
from numbering.lifecycle import CLOSED_CONTRACT_STATUSES, Guard, Transition
from numbering.models import Number

# The status of a number's contract: its block's contract, or (a block an import created
# without one) the import's contract. NULL when the number has no contract. The one place
# that knows how a number reaches its contract (ADR 1610).
_CONTRACT_STATUS = (
    "SELECT c.status FROM contracts_numberblock b"
    " LEFT JOIN contracts_inventoryimport i ON i.id = b.inventory_import_id"
    " JOIN contracts_contract c ON c.id = COALESCE(b.contract_id, i.contract_id)"
    " WHERE b.id = {block}"
)
_CLOSED = ", ".join(f"'{status}'" for status in CLOSED_CONTRACT_STATUSES)
# The same, as a scalar subquery on a row aliased `n` (the action's load reads it with the number).
CONTRACT_STATUS_OF_ROW = _CONTRACT_STATUS.format(block="n.block_id")


# Every column of the number, as the UPDATE returns it (in the model's field order).
COLUMNS = tuple(f.column for f in Number._meta.concrete_fields)
ATTNAMES = tuple(f.attname for f in Number._meta.concrete_fields)
_POSITIONAL = re.compile(r"%s")


def _named(sql: str, prefix: str) -> str:
    """A fragment's positional %s placeholders as %(<prefix>0)s, %(<prefix>1)s, …"""
    names = iter(range(sql.count("%s")))
    return _POSITIONAL.sub(lambda _m: f"%({prefix}{next(names)})s", sql)


# Columns a transition may set besides state/version/state_changed_at.
SETTABLE = frozenset(
    {"tenant_id", "last_tenant_id", "reserved_until", "quarantine_until", "last_disconnected_at", "burned_at"}
)

GUARD_SQL: dict[Guard, str] = {
    Guard.HOLDER: "n.tenant_id = %(tenant_id)s",
    Guard.RESERVATION_LIVE: "n.reserved_until > %(now)s",
    Guard.RESERVATION_DUE: "n.reserved_until <= %(now)s",
    Guard.QUARANTINE_DUE: "n.quarantine_until <= %(now)s",
    # FOR SHARE holds the contract row until our commit: a suspension (SELECT … FOR UPDATE
    # of the contract) waits for a take in flight, and a take waits for a suspension in
    # flight and then reads its committed status. Takes share the lock among themselves.
    Guard.CONTRACT_OPEN: (
        f"COALESCE(({_CONTRACT_STATUS.format(block='n.block_id')} FOR SHARE OF c), '') NOT IN ({_CLOSED})"
    ),
    Guard.LEASE_DUE: (
        "EXISTS (SELECT 1 FROM numbering_lease l WHERE l.number_id = n.id"
        " AND l.status = 'ACTIVE' AND l.expires_at <= %(now)s)"
    ),
}


def compare_and_set(
    *,
    number_id: int,
    transition: Transition,
    changes: Mapping[str, Any],
    now: datetime,
    tenant_id: uuid.UUID | None = None,
    expected_version: int | None = None,
    side_rows: Sequence[Fragment] = (),
) -> dict[str, Any] | None:
    """Apply `transition` to the number; return the row as it now is ({attname: value}), or
    None if we lost. `side_rows` are writes that must happen only if we won: each may read
    the CTE `cas` (the updated row), e.g. `INSERT … SELECT … FROM cas` or
    `UPDATE … WHERE … AND EXISTS (SELECT 1 FROM cas)`."""
    unknown = set(changes) - SETTABLE
    if unknown:
        raise ValueError(f"compare_and_set cannot set {sorted(unknown)}")
    params: dict[str, Any] = {
        "id": number_id,
        "source": transition.source.value,
        "target": transition.target.value,
        "now": now,
        "tenant_id": tenant_id,
        "expected_version": expected_version,
    }
    assignments = ["state = %(target)s", "version = n.version + 1"]
    if transition.source != transition.target:
        assignments.append("state_changed_at = %(now)s")
    for column, value in changes.items():
        params[f"set_{column}"] = value
        assignments.append(f"{column} = %(set_{column})s")
    where = ["n.id = %(id)s", "n.state = %(source)s"]
    if expected_version is not None:
        where.append("n.version = %(expected_version)s")
    for guard in sorted(transition.guards):
        if guard is Guard.HOLDER and tenant_id is None:
            continue  # ops and system act on any holder's number
        where.append(GUARD_SQL[guard])
    returning = ", ".join(f"n.{c}" for c in COLUMNS)
    update = (
        f"UPDATE numbering_number AS n SET {', '.join(assignments)}"  # noqa: S608 - fixed fragments only
        f" WHERE {' AND '.join(where)} RETURNING {returning}"
    )
    if side_rows:
        ctes = [f"cas AS ({update})"]
        for i, fragment in enumerate(side_rows):
            ctes.append(f"side{i} AS ({_named(fragment.sql, f'side{i}_')})")
            params.update({f"side{i}_{j}": value for j, value in enumerate(fragment.params)})
        sql = f"WITH {', '.join(ctes)} SELECT * FROM cas"  # noqa: S608 - fixed fragments only
    else:
        sql = update
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else dict(zip(ATTNAMES, row, strict=True))


def contract_status(number_id: int) -> str | None:
    """The status of the number's contract (None without one): how a lost CAS is classified."""
    sql = _CONTRACT_STATUS.format(block="(SELECT block_id FROM numbering_number WHERE id = %s)")
    with connection.cursor() as cursor:
        cursor.execute(sql, [number_id])
        row = cursor.fetchone()
    return None if row is None else str(row[0])


def hidden_number_facts(number: str) -> tuple[str, int] | None:
    """State and version of a number the caller's tenant scope hides (another tenant's, or
    in no tenant's hands and not AVAILABLE): all a refusal's classification needs, through a
    SECURITY DEFINER function that returns nothing else (numbering 0013). None: no such number."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT state, version FROM numbering_hidden_number_facts(%s)", [number])
        row = cursor.fetchone()
    return None if row is None else (str(row[0]), int(row[1]))
