"""Canonical form and hash of an audit event: shared by the writer and the verifier."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_body(
    *,
    chain: int,
    seq: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    tenant_id: str | None,
    request_id: str,
    before: Any,
    after: Any,
) -> dict[str, Any]:
    return {
        "chain": chain,
        "seq": seq,
        "occurred_at": canonical_time(occurred_at),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "tenant_id": tenant_id,
        "request_id": request_id,
        "before": before,
        "after": after,
    }


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """hash = SHA-256(prev_hash ‖ canonical JSON of the event)."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(body).encode("utf-8")).hexdigest()
