"""Celery tasks of the audit app: thin adapters over audit.services."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from prometheus_client import Gauge

from audit.services import audit_verify_chains

log = logging.getLogger(__name__)

CHAIN_BREAKS = Gauge("numbering_audit_chain_breaks", "Broken audit chains found by the last verification")
VERIFIED = Gauge("numbering_audit_events_verified", "Audit events verified by the last verification")


@shared_task(name="audit.tasks.audit_verify")
def audit_verify() -> dict[str, Any]:
    result = audit_verify_chains()
    CHAIN_BREAKS.set(len(result.breaks))
    VERIFIED.set(result.verified)
    if not result.ok:
        for b in result.breaks:
            log.error("audit chain BROKEN: chain %s at seq %s: %s", b.chain, b.seq, b.reason)
    return {"ok": result.ok, "verified": result.verified, "breaks": len(result.breaks)}
