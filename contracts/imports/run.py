"""Step 2 of an import, the run (any process, any number of times): verify, validate and
commit in ONE transaction in the chosen mode — blocks, numbers (AVAILABLE, pooled, added
by numbering.inventory), the import record with its per-row report, an audit event and
the outbox event ``numbering.import.completed.v1``. All-or-nothing refuses when any row is
bad; valid-rows imports exactly the good ones. A file already committed is a no-op."""

from __future__ import annotations

import logging
from typing import IO, Any

from django.db import connection, transaction
from prometheus_client import Counter

from audit.services import audit_append
from contracts.imports import staging
from contracts.imports.outcome import ImportOutcome, Refusal, dry_outcome, outcome_of
from contracts.imports.rows import DUP_FILE, DUP_INVENTORY, INVALID, VALID
from contracts.imports.signature import verify_signature
from contracts.imports.storage import import_create, import_set_mode
from contracts.models import InventoryImport, NumberBlock
from core import clock, errors, locks
from core.actors import Actor
from core.outbox import outbox_enqueue
from core.rls import rls_scope
from numbering.inventory import numbers_add_imported

logger = logging.getLogger(__name__)

EVENT_COMPLETED = "numbering.import.completed.v1"
S = InventoryImport.Status

# What an import run ended in, per issuer (the NumberingLeaseImportFailed alert reads it).
_RESULT_LABEL: dict[str, str] = {
    S.COMMITTED: "imported",
    S.REJECTED: "rejected",
    S.FAILED: "failed",
    S.ALREADY_IMPORTED: "noop",
    S.VERIFIED: "verified",
}
IMPORT_RESULTS = Counter("numbering_inventory_imports_total", "Inventory import runs by result", ["issuer", "result"])


def _finish(imp: InventoryImport, status: str, *, error: str = "", **fields: Any) -> None:
    imp.status, imp.error, imp.completed_at = status, error, clock.now()
    for name, value in fields.items():
        setattr(imp, name, value)
    rows = InventoryImport.objects.filter(pk=imp.pk)
    if status != S.COMMITTED:
        # A commit is final: a second run of the same import (a redelivered task) that fails or
        # is refused afterwards must not overwrite it (ADR 1502).
        rows = rows.exclude(status=S.COMMITTED)
    if rows.update(status=status, error=error, completed_at=imp.completed_at, **fields):
        IMPORT_RESULTS.labels(imp.issuer.code, _RESULT_LABEL.get(status, status.lower())).inc()


def _already(imp: InventoryImport) -> InventoryImport | None:
    return (
        InventoryImport.objects.filter(issuer_id=imp.issuer_id, file_sha256=imp.file_sha256, status=S.COMMITTED)
        .exclude(pk=imp.pk)
        .first()
    )


def run_import(import_id: int, *, mode: str | None = None, dry_run: bool = False) -> ImportOutcome:
    """Verify, validate and (unless dry_run) commit one import. Safe to call again: a
    committed import or an already-imported file is a no-op; a refused one is re-checked."""
    imp = InventoryImport.objects.select_related("issuer", "contract").get(pk=import_id)
    if imp.status == S.COMMITTED:
        return outcome_of(imp, f"import {imp.pk} was already committed; nothing to do", noop=True)
    if imp.purged_at is not None:
        # Its files are gone (retention, ADR 1354): a run would fail on a missing file.
        raise errors.ImportRefused(
            f"import: the upload of import {imp.pk} was purged on {imp.purged_at:%Y-%m-%d} after its retention;"
            " upload the file again",
            field="import",
        )
    if mode is not None:
        imp = import_set_mode(import_id=import_id, mode=mode)
    # Claimed unless it committed meanwhile: a redelivered task (a worker died, or the broker's
    # visibility timeout passed while one still ran) may race the run that commits (ADR 1502).
    claimed = (
        InventoryImport.objects.filter(pk=imp.pk)
        .exclude(status=S.COMMITTED)
        .update(status=S.RUNNING, processed_rows=0, error="")
    )
    if not claimed:
        imp.refresh_from_db()
        return outcome_of(imp, f"import {imp.pk} was already committed; nothing to do", noop=True)
    try:
        key = verify_signature(imp)
        imp.key_fingerprint = key.fingerprint
        InventoryImport.objects.filter(pk=imp.pk).update(key_fingerprint=key.fingerprint)
        previous = _already(imp)
        if previous is not None:
            message = (
                f"no-op: this file (SHA-256 {imp.file_sha256[:16]}…) was already imported as import {previous.pk}"
                f" on {previous.completed_at:%Y-%m-%d %H:%M} UTC; nothing changed"
            )
            _finish(imp, S.ALREADY_IMPORTED, error=message, processed_rows=imp.total_rows)
            return outcome_of(imp, message, noop=True)
        staging.validate_rows(imp)
        return _commit(imp, dry_run=dry_run)
    except Refusal as exc:
        imp.refresh_from_db()
        _finish(imp, S.REJECTED, error=str(exc), report=[])
        logger.info("inventory import %s refused: %s", imp.pk, exc)
        return outcome_of(imp, f"refused: {exc}", dry_run=dry_run)
    except Exception as exc:
        imp.refresh_from_db()
        _finish(imp, S.FAILED, error=f"{type(exc).__name__}: {exc}")
        logger.exception("inventory import %s failed", imp.pk)
        raise
    finally:
        if not connection.needs_rollback:
            staging.drop_temp_table()


def _create_blocks(imp: InventoryImport) -> list[str]:
    names = []
    for name, kind, low, high in staging.valid_block_ranges():
        block, created = NumberBlock.objects.get_or_create(
            issuer=imp.issuer,
            name=name,
            defaults={
                "kind": kind,
                "contract": imp.contract,
                "range_start": low,
                "range_end": high,
                "inventory_import": imp,
            },
        )
        if not created and (low < block.range_start or high > block.range_end):
            block.range_start, block.range_end = min(low, block.range_start), max(high, block.range_end)
            block.save(update_fields=["range_start", "range_end"])
        names.append(name)
    return names


def _commit(imp: InventoryImport, *, dry_run: bool) -> ImportOutcome:
    with transaction.atomic(), rls_scope(platform=True):
        locks.xact_lock(locks.IMPORTS, "commit")  # import commits are rare and short: one at a time
        imp = (
            InventoryImport.objects.select_for_update(of=("self",)).select_related("issuer", "contract").get(pk=imp.pk)
        )
        if imp.status == S.COMMITTED:  # another run of this same import committed while we validated
            return outcome_of(imp, f"import {imp.pk} was already committed; nothing to do", noop=True)
        previous = _already(imp)
        if previous is not None:  # another worker committed the same file while we validated
            message = f"no-op: this file was already imported as import {previous.pk}; nothing changed"
            _finish(imp, S.ALREADY_IMPORTED, error=message)
            return outcome_of(imp, message, noop=True)
        staging.mark_inventory_duplicates()
        counts = staging.counts()
        valid, invalid = counts.get(VALID, 0), counts.get(INVALID, 0)
        duplicates = counts.get(DUP_FILE, 0) + counts.get(DUP_INVENTORY, 0)
        total = valid + invalid + duplicates
        summary: dict[str, Any] = {
            "total_rows": total,
            "rejected_count": invalid,
            "duplicate_count": duplicates,
            "report": staging.report(),
        }
        problems = invalid + duplicates
        if imp.mode == InventoryImport.Mode.ALL_OR_NOTHING and problems:
            message = (
                f"refused: {invalid} invalid and {duplicates} duplicate row(s) of {total}; nothing imported"
                f" (mode all-or-nothing; valid-rows would import the {valid} valid row(s))"
            )
            status = S.VERIFIED if dry_run else S.REJECTED
            _finish(imp, status, error=message, accepted_count=0, processed_rows=total, **summary)
            return outcome_of(imp, message, dry_run=dry_run) if not dry_run else dry_outcome(imp, message, ok=False)
        if valid == 0:
            message = f"refused: none of the {total} row(s) is valid; nothing imported"
            _finish(
                imp,
                S.VERIFIED if dry_run else S.REJECTED,
                error=message,
                accepted_count=0,
                processed_rows=total,
                **summary,
            )
            return outcome_of(imp, message) if not dry_run else dry_outcome(imp, message, ok=False)
        if dry_run:
            message = f"dry run: {valid} row(s) would be imported ({invalid} invalid, {duplicates} duplicate)"
            _finish(imp, S.VERIFIED, error="", accepted_count=valid, processed_rows=total, **summary)
            return dry_outcome(imp, message, ok=True)
        blocks = _create_blocks(imp)
        inserted = numbers_add_imported(rows=staging.create_valid_rows_view(issuer_id=imp.issuer_id))
        assert inserted == valid, (inserted, valid)
        _finish(imp, S.COMMITTED, accepted_count=inserted, processed_rows=total, **summary)
        data = {
            "import_id": imp.pk,
            "issuer": imp.issuer.code,
            "file_sha256": imp.file_sha256,
            "key_fingerprint": imp.key_fingerprint,
            "mode": imp.mode,
            "total_rows": total,
            "accepted": inserted,
            "rejected": invalid,
            "duplicates": duplicates,
            "blocks": blocks,
        }
        audit_append(
            actor=imp.created_by,
            action="inventory.import",
            object_type="inventory_import",
            object_id=f"import:{imp.pk}",
            after=data,
        )
        outbox_enqueue(event_type=EVENT_COMPLETED, aggregate_id=f"import:{imp.pk}", data=data, subject=EVENT_COMPLETED)
    message = f"imported {inserted} number(s) into {len(blocks)} block(s); {invalid} invalid, {duplicates} duplicate"
    logger.info("inventory import %s committed: %s", imp.pk, message)
    return outcome_of(imp, message, committed=True)


def import_file(
    *,
    issuer_code: str,
    csv_file: bytes | IO[bytes],
    signature: bytes | IO[bytes],
    actor: Actor,
    filename: str = "",
    mode: str = InventoryImport.Mode.ALL_OR_NOTHING,
    dry_run: bool = False,
) -> ImportOutcome:
    """create + run in one call (the command, seed_demo, tests)."""
    imp = import_create(
        issuer_code=issuer_code, csv_file=csv_file, signature=signature, actor=actor, filename=filename, mode=mode
    )
    return run_import(imp.pk, dry_run=dry_run)
