"""Celery tasks of the audit app: thin adapters over audit.checkpoints / audit.services."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from prometheus_client import Gauge

from audit.archive import archive_audit_partitions
from audit.checkpoints import audit_verify_with_checkpoints
from audit.partitions import ensure_audit_partitions

log = logging.getLogger(__name__)

CHAIN_BREAKS = Gauge("numbering_audit_chain_breaks", "Broken audit chains found by the last verification")
VERIFIED = Gauge("numbering_audit_events_verified", "Audit events verified by the last verification")


@shared_task(name="audit.tasks.audit_verify")
def audit_verify() -> dict[str, Any]:
    # The daily verify (DESIGN §6): chains, then every signed checkpoint, then a new one.
    outcome = audit_verify_with_checkpoints()
    result = outcome.result
    breaks = len(result.breaks) + len(outcome.checkpoint_breaks)
    CHAIN_BREAKS.set(breaks)
    VERIFIED.set(result.verified)
    for b in result.breaks:
        log.error("audit chain BROKEN: chain %s at seq %s: %s", b.chain, b.seq, b.reason)
    for cb in outcome.checkpoint_breaks:
        log.error("audit chain contradicts a signed checkpoint: %s", cb)
    for warning in outcome.warnings:
        log.warning("audit verify: %s", warning)
    return {"ok": outcome.ok, "verified": result.verified, "breaks": breaks, "checkpoint": outcome.new_checkpoint}


@shared_task(name="audit.tasks.ensure_partitions")
def ensure_partitions() -> list[str]:
    # Daily, so a missed run still leaves AUDIT_PARTITIONS_AHEAD - 1 months of slack.
    return ensure_audit_partitions()


@shared_task(name="audit.tasks.archive_partitions")
def archive_partitions() -> dict[str, Any]:
    # Monthly (ADR 1630): months older than AUDIT_HOT_MONTHS go to WORM storage and are dropped.
    result = archive_audit_partitions()
    return {"archived": result.archived, "recovered": result.recovered, "locked": result.skipped_locked}
