"""The only module that writes compare-and-set SQL (DESIGN §2.2).

Every state change of a number is one UPDATE that succeeds only from the expected state
(and version, when the caller sent one) with the transition's guards. PostgreSQL's row
lock serialises concurrent writers; the loser re-evaluates the WHERE clause and gets
zero rows, and the service then reads the row once to classify the refusal.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import connection

from numbering.lifecycle import CLOSED_CONTRACT_STATUSES, Guard, Transition

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
) -> int | None:
    """Apply `transition` to the number; return its new version, or None if we lost."""
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
    sql = (
        f"UPDATE numbering_number AS n SET {', '.join(assignments)}"  # noqa: S608 - fixed fragments only
        f" WHERE {' AND '.join(where)} RETURNING n.version"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def contract_status(number_id: int) -> str | None:
    """The status of the number's contract (None without one): how a lost CAS is classified."""
    sql = _CONTRACT_STATUS.format(block="(SELECT block_id FROM numbering_number WHERE id = %s)")
    with connection.cursor() as cursor:
        cursor.execute(sql, [number_id])
        row = cursor.fetchone()
    return None if row is None else str(row[0])
