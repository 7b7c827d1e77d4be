"""Purge stored import uploads after their retention (issue 13 item 10, ADR 1354).

An upload is the issuer's CSV and its detached signature under INVENTORY_IMPORT_DIR. Once
its retention is over the two files are deleted and the InventoryImport record is marked
``purged_at``; the record keeps the file's SHA-256 (so a re-upload of the same file is still
recognised as already imported), the key fingerprint, the outcome and the per-row report.

- COMMITTED: kept INVENTORY_IMPORT_RETENTION_DAYS after completion.
- everything else but RUNNING (refused, failed, duplicate, dry-run only, abandoned in the
  wizard): kept INVENTORY_IMPORT_UNCOMMITTED_RETENTION_DAYS after completion or upload.
- RUNNING: never (a worker is reading it).

Idempotent (a purged record is skipped; a missing file is not an error) and one run at a
time (core.locks.job_lock). Each record is claimed with a compare-and-set on
``purged_at IS NULL`` and a non-running status before its files are deleted, so an import
that starts running concurrently keeps its upload.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce

from contracts.imports.storage import csv_path, signature_path
from contracts.models import InventoryImport
from core import clock
from core.locks import job_lock

logger = logging.getLogger(__name__)
S = InventoryImport.Status
JOB = "purge_import_uploads"


@dataclass
class PurgeResult:
    purged: int = 0
    skipped: bool = False


def _due() -> Q:
    now = clock.now()
    committed_before = now - timedelta(days=settings.INVENTORY_IMPORT_RETENTION_DAYS)
    other_before = now - timedelta(days=settings.INVENTORY_IMPORT_UNCOMMITTED_RETENTION_DAYS)
    return Q(status=S.COMMITTED, ended__lte=committed_before) | (
        ~Q(status__in=[S.COMMITTED, S.RUNNING]) & Q(ended__lte=other_before)
    )


def purge_import_uploads(*, batch: int = 500) -> PurgeResult:
    """Delete the stored uploads of imports past retention; returns how many were purged."""
    result = PurgeResult()
    with job_lock(JOB) as acquired:
        if not acquired:
            result.skipped = True
            return result
        while True:
            ids = list(
                InventoryImport.objects.filter(purged_at__isnull=True)
                .annotate(ended=Coalesce("completed_at", "created_at"))
                .filter(_due())
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            for pk in ids:
                claimed = (
                    InventoryImport.objects.filter(pk=pk, purged_at__isnull=True)
                    .exclude(status=S.RUNNING)
                    .update(purged_at=clock.now())
                )
                if not claimed:
                    continue
                imp = InventoryImport(pk=pk)
                csv_path(imp).unlink(missing_ok=True)
                signature_path(imp).unlink(missing_ok=True)
                result.purged += 1
            if len(ids) < batch:
                break
    logger.info("%s: purged=%d", JOB, result.purged)
    return result
