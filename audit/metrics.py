"""Audit-chain metrics (DESIGN §8: audit chain status and last verify)."""

from __future__ import annotations

import math

from prometheus_client import Gauge

AUDIT_CHAIN_OK = Gauge("numbering_audit_chain_ok", "1 when the last verify found every chain and checkpoint intact")
AUDIT_LAST_VERIFY = Gauge("numbering_audit_last_verify_timestamp_seconds", "Unix time of the last audit chain verify")
# Unknown (NaN) until this process has verified: a fresh process must not report 0, which
# pages NumberingAuditChainBroken.
AUDIT_CHAIN_OK.set(math.nan)
