"""Monthly partitions of `audit_auditevent` (ADR 1630): created ahead, never edited.

Partition `audit_auditevent_pYYYYMM` holds occurred_at in [first of month, first of next
month) UTC; `audit_auditevent_p_legacy` (migration 0003) holds everything before the first
monthly one. DDL runs on the owner connection (the app role owns no table). Partitions get
no grants: the app and tenant roles reach events only through the parent and its RLS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connections, transaction
from psycopg import sql

from audit.metrics import AUDIT_ARCHIVED_THROUGH, AUDIT_PARTITION_MONTHS_AHEAD
from audit.models import AuditArchiveSegment
from core import clock, locks

PARENT = "audit_auditevent"
OWNER = "owner"
_BOUND = re.compile(r"FROM \((?P<start>MINVALUE|'[^']+')\) TO \((?P<end>MAXVALUE|'[^']+')\)")


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime | None  # None: MINVALUE (the legacy partition)
    end: datetime


def month_start(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return datetime(value.year, value.month, 1, tzinfo=UTC)


def month_add(value: datetime, months: int) -> datetime:
    index = value.year * 12 + value.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{PARENT}_p{start:%Y%m}"


def _bound(text: str) -> datetime | None:
    if text in {"MINVALUE", "MAXVALUE"}:
        return None
    value = text.strip("'")
    if re.search(r"[+-]\d\d$", value):
        value += ":00"
    return datetime.fromisoformat(value).astimezone(UTC)


def list_partitions(using: str = OWNER) -> list[Partition]:
    """Attached partitions, oldest first (the catalog is readable by the app role too)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound)
        if match is None:
            continue  # a DEFAULT partition is never created by us
        end = _bound(match["end"])
        if end is None:
            continue
        found.append(Partition(name, _bound(match["start"]), end))
    return sorted(found, key=lambda p: p.end)


def _grantees(cursor: object, table: str) -> list[str]:
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants"
        " WHERE table_name = %s AND grantee <> current_user",
        [table],
    )
    return [g for (g,) in cursor.fetchall()]  # type: ignore[attr-defined]


def months_ahead(partitions: list[Partition], now: datetime) -> int:
    """Whole months after the current one covered without a gap (0: next month is missing)."""
    current = month_start(now)
    covered = 0
    month = month_add(current, 1)
    while any((p.start is None or p.start <= month) and p.end >= month_add(month, 1) for p in partitions):
        covered += 1
        month = month_add(month, 1)
    return covered


def ensure_audit_partitions(*, now: datetime | None = None, ahead: int | None = None) -> list[str]:
    """Create the current month's partition and `ahead` more (AUDIT_PARTITIONS_AHEAD);
    idempotent; returns the names created. Months already archived are never re-created."""
    now = now or clock.now()
    ahead = settings.AUDIT_PARTITIONS_AHEAD if ahead is None else ahead
    created: list[str] = []
    with transaction.atomic(using=OWNER):
        locks.xact_lock(locks.AUDIT_ARCHIVE, "partitions", using=OWNER)
        existing = list_partitions()
        with connections[OWNER].cursor() as cursor:
            cursor.execute("SELECT max(period_end) FROM audit_auditarchivesegment")
            archived_to = cursor.fetchone()[0]
            for offset in range(ahead + 1):
                start = month_add(month_start(now), offset)
                end = month_add(start, 1)
                if archived_to is not None and start < archived_to:
                    continue
                if any((p.start is None or p.start < end) and p.end > start for p in existing):
                    continue  # covered (or overlapped by the legacy partition)
                name = partition_name(start)
                cursor.execute(
                    sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM (%s) TO (%s)").format(
                        sql.Identifier(name), sql.Identifier(PARENT)
                    ),
                    [start, end],
                )
                # Default privileges may have granted the new table to others: revoke them all.
                for grantee in _grantees(cursor, name):
                    cursor.execute(
                        sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(name), sql.Identifier(grantee))
                    )
                existing.append(Partition(name, start, end))
                created.append(name)
    AUDIT_PARTITION_MONTHS_AHEAD.set(months_ahead(existing, now))
    return created


def report_partitions(*, now: datetime | None = None) -> int:
    """Set the months-ahead and archived-through gauges from the catalog (app role)."""
    ahead = months_ahead(list_partitions("default"), now or clock.now())
    AUDIT_PARTITION_MONTHS_AHEAD.set(ahead)
    last = AuditArchiveSegment.objects.order_by("-period_end").values_list("period_end", flat=True).first()
    if last is not None:
        AUDIT_ARCHIVED_THROUGH.set(last.timestamp())
    return ahead
