"""Celery tasks of the audit app: thin adapters over audit.checkpoints / audit.services."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from prometheus_client import Gauge

from audit.checkpoints import audit_verify_with_checkpoints
from audit.partitions import report_partitions

log = logging.getLogger(__name__)

CHAIN_BREAKS = Gauge("numbering_audit_chain_breaks", "Broken audit chains found by the last verification")
VERIFIED = Gauge("numbering_audit_events_verified", "Audit events verified by the last verification")


@shared_task(name="audit.tasks.audit_verify")
def audit_verify(full: bool = False) -> dict[str, Any]:
    # The daily verify (DESIGN §6, ADR 1630): from the newest signed checkpoint, then a new
    # one. `full` (monthly): the archived segments, every hot event, every checkpoint.
    outcome = audit_verify_with_checkpoints(full=full)
    # The partition jobs run as short-lived CronJobs; this long-running worker exports how
    # many months ahead exist (NumberingAuditPartitionMissing) and how far the archive got.
    report_partitions()
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
