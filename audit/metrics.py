"""Audit-chain metrics (DESIGN §8: audit chain status and last verify)."""

from __future__ import annotations

import math

from prometheus_client import Gauge

AUDIT_CHAIN_OK = Gauge("numbering_audit_chain_ok", "1 when the last verify found every chain and checkpoint intact")
AUDIT_LAST_VERIFY = Gauge("numbering_audit_last_verify_timestamp_seconds", "Unix time of the last audit chain verify")
# Unknown (NaN) until this process has verified: a fresh process must not report 0, which
# pages NumberingAuditChainBroken.
AUDIT_CHAIN_OK.set(math.nan)
# Partitions and archive (ADR 1630): NumberingAuditPartitionMissing fires below 1.
AUDIT_PARTITION_MONTHS_AHEAD = Gauge(
    "numbering_audit_partition_months_ahead", "Months after the current one that already have an audit partition"
)
AUDIT_PARTITION_MONTHS_AHEAD.set(math.nan)
AUDIT_ARCHIVE_LAST_SUCCESS = Gauge(
    "numbering_audit_archive_last_success_timestamp_seconds", "Unix time of the last audit archive run that finished"
)
AUDIT_ARCHIVED_THROUGH = Gauge(
    "numbering_audit_archived_through_timestamp_seconds", "End of the newest audit month archived to WORM storage"
)
