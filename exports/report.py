"""The regulator report itself (DESIGN §7, ADR 0700): what the CSV and its manifest say.

The CSV holds every number that existed before the period end, in its state at period
end — the `after` snapshot of its last audit event before the end; failing that the
`before` snapshot of its first event after it; failing that its current row — with the
category the regulator counts it in, formula-safe. The manifest describes the CSV
(hash, size, version, row count, utilisation totals) and is what the key provider signs.
Where the two objects go and how a run is recorded is exports.services.
"""

from __future__ import annotations

import hashlib
import io
import json
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from core import worm as storage
from core.csv_safety import SafeCsvWriter
from core.periods import Period
from core.rls import rls_scope
from core.signing import signing_bytes
from pools.models import Tenant

MANIFEST_SCHEMA = "numbering.regulator-export.v1"
CATEGORIES = ("assigned", "reserved", "aging", "administrative", "available")
CATEGORY_OF_STATE = {
    "ASSIGNED": "assigned",
    "RESERVED": "reserved",
    "QUARANTINED": "aging",
    "RETIRED": "administrative",
    "AVAILABLE": "available",
}
CSV_COLUMNS = [
    "number", "kind", "issuer_code", "issuer_name", "contract_reference", "block", "vanity_tier",
    "state", "category", "holder_registration_no", "holder_name", "lease_starts_at", "lease_expires_at",
    "state_source",
]  # fmt: skip
FETCH_SIZE = 2000


def object_keys(period: str) -> tuple[str, str]:
    """(CSV key, manifest key) of a period in the export bucket."""
    base = f"{settings.EXPORT_PREFIX}/{period}/numbering-{period}"
    return f"{base}.csv", f"{base}.manifest.json"


# --- state at period end (ADR 0700) ----------------------------------------------------------------

# For each number that existed before the period end: the `after` snapshot of its last
# audit event before the end; failing that the `before` snapshot of its first event after
# the end (nothing changed in between); failing that its current row. The audit_object
# index (object_type, object_id, occurred_at) serves both lateral lookups.
_STATE_SQL = """
SELECT n.number, n.kind, i.code, i.name, c.reference, b.name, n.vanity_tier,
       n.state, n.tenant_id::text, l.starts_at, l.expires_at,
       lb.after -> 'number', fa.before
FROM numbering_number n
JOIN contracts_issuer i ON i.id = n.issuer_id
LEFT JOIN contracts_numberblock b ON b.id = n.block_id
LEFT JOIN contracts_contract c ON c.id = b.contract_id
LEFT JOIN numbering_lease l ON l.number_id = n.id AND l.status = 'ACTIVE'
LEFT JOIN LATERAL (
    SELECT a.after FROM audit_auditevent a
    WHERE a.object_type = 'number' AND a.object_id = n.number AND a.occurred_at < %(end)s
      AND a.after -> 'number' ->> 'state' IS NOT NULL
    ORDER BY a.occurred_at DESC, a.id DESC LIMIT 1
) lb ON true
LEFT JOIN LATERAL (
    SELECT a.before FROM audit_auditevent a
    WHERE lb.after IS NULL AND a.object_type = 'number' AND a.object_id = n.number
      AND a.occurred_at >= %(end)s AND a.before ->> 'state' IS NOT NULL
    ORDER BY a.occurred_at ASC, a.id ASC LIMIT 1
) fa ON true
WHERE n.created_at < %(end)s
ORDER BY n.number
"""


class _Holders:
    """Tenant (registration no., name) by id, loaded on first sight: tenants are few next
    to numbers, so this stays small while the rows stream."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, str]] = {}

    def get(self, tenant_id: str | None) -> tuple[str, str]:
        if not tenant_id:
            return "", ""
        if tenant_id not in self._cache:
            tenant = Tenant.objects.filter(id=tenant_id).values_list("registration_no", "name").first()
            self._cache[tenant_id] = (tenant[0], tenant[1]) if tenant else ("", f"(unknown tenant {tenant_id})")
        return self._cache[tenant_id]


def _iso(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return value.astimezone(zoneinfo.ZoneInfo("UTC")).isoformat()
    return str(value)


def _json(value: Any) -> Any:
    # Django hands jsonb to raw cursors as text.
    return json.loads(value) if isinstance(value, str | bytes) else value


def _snapshot(after: Any, before: Any) -> tuple[dict[str, Any] | None, str]:
    if after is not None:
        return _json(after), "event"
    if before is not None:
        return _json(before), "next-event"
    return None, "current"


@dataclass
class GeneratedCsv:
    row_count: int
    totals: list[dict[str, Any]]
    sha256: str
    size: int


def write_regulator_csv(period: Period, handle: Any) -> GeneratedCsv:
    """Stream the period-end rows into `handle` (binary) and return counts and totals."""
    digest = hashlib.sha256()
    size = 0

    class _Sink(io.TextIOBase):
        def write(self, text: str) -> int:  # type: ignore[override]
            nonlocal size
            data = text.encode("utf-8")
            digest.update(data)
            handle.write(data)
            size += len(data)
            return len(text)

    writer = SafeCsvWriter(_Sink())
    writer.writerow(CSV_COLUMNS)
    totals: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(CATEGORIES, 0))
    holders = _Holders()
    rows = 0
    with transaction.atomic(), rls_scope(platform=True):
        with connection.chunked_cursor() as cursor:
            cursor.execute(_STATE_SQL, {"end": period.end})
            while batch := cursor.fetchmany(FETCH_SIZE):
                for (
                    number,
                    kind,
                    issuer_code,
                    issuer_name,
                    contract,
                    block,
                    tier,
                    state,
                    tenant_id,
                    l_start,
                    l_end,
                    after,
                    before,
                ) in batch:
                    snapshot, source = _snapshot(after, before)
                    if snapshot is not None:
                        state, tenant_id = snapshot.get("state"), snapshot.get("tenant_id")
                        lease = snapshot.get("lease") or {}
                        l_start, l_end = lease.get("starts_at"), lease.get("expires_at")
                    if state != "ASSIGNED":
                        l_start = l_end = None
                    category = CATEGORY_OF_STATE.get(state or "", "available")
                    reg_no, name = holders.get(tenant_id if state in {"ASSIGNED", "RESERVED"} else None)
                    writer.writerow([
                        number, kind, issuer_code, issuer_name, contract or "", block or "", tier, state, category,
                        reg_no, name, _iso(l_start), _iso(l_end), source,
                    ])  # fmt: skip
                    totals[(issuer_code, kind, block or "")][category] += 1
                    rows += 1
    table = [
        {"issuer": issuer, "kind": kind, "block": block, **counts, "total": sum(counts.values())}
        for (issuer, kind, block), counts in sorted(totals.items())
    ]
    return GeneratedCsv(rows, table, digest.hexdigest(), size)


# --- the manifest -------------------------------------------------------------------------------


def build_manifest(
    *, period: Period, generated_at: datetime, generated: GeneratedCsv, csv_object: storage.StoredObject, key_id: str
) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        "period": period.name,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "time_zone": settings.TIME_ZONE,
        "generated_at": generated_at.isoformat(),
        "row_count": generated.row_count,
        "csv": {
            "bucket": csv_object.bucket,
            "key": csv_object.key,
            "version_id": csv_object.version_id,
            "sha256": generated.sha256,
            "size_bytes": generated.size,
            "columns": CSV_COLUMNS,
        },
        "categories": {
            "assigned": "ASSIGNED",
            "reserved": "RESERVED",
            "aging": "QUARANTINED",
            "administrative": "RETIRED",
            "available": "AVAILABLE",
        },  # fmt: skip
        "totals": generated.totals,
        "state_at_period_end": "after-state of the number's last audit event before period_end; else the"
        " before-state of its first event after it; else its current state (ADR 0700)",
        "formula_cells": "cells starting with = + - @ tab or CR are prefixed with a single quote (bare E.164 kept)",
        "key_id": key_id,
    }


def manifest_signing_bytes(manifest: dict[str, Any]) -> bytes:
    """The canonical form the signature covers: the manifest without its signature."""
    return signing_bytes(manifest)
