"""The one shape of a number, its lease and its reservation as the outside world sees it.

Every surface renders from here: the services' results (REST bodies, gRPC replies via the
servicer), the audit trail's before/after, the lease cache entry (`cache_entry`) and the
ValidateLease fallback read. A field added here reaches all of them at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from numbering.models import Lease, Number, Reservation


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def lease_snapshot(lease: Lease | None) -> dict[str, Any] | None:
    if lease is None:
        return None
    return {
        "lease_id": str(lease.id),
        "tenant_id": str(lease.tenant_id),
        "status": lease.status,
        "starts_at": iso(lease.starts_at),
        "expires_at": iso(lease.expires_at),
        "term_days": lease.term_days,
        "auto_renew": lease.auto_renew,
        "renewals": lease.renewals,
    }


def reservation_snapshot(reservation: Reservation | None) -> dict[str, Any] | None:
    if reservation is None:
        return None
    return {
        "reservation_id": str(reservation.id),
        "tenant_id": str(reservation.tenant_id),
        "status": reservation.status,
        "created_at": iso(reservation.created_at),
        "expires_at": iso(reservation.expires_at),
    }


def number_snapshot(number: Number, lease: Lease | None = None) -> dict[str, Any]:
    return {
        "number": number.number,
        "kind": number.kind,
        "state": number.state,
        "operator_code": number.issuer.code,
        "vanity": number.vanity,
        "vanity_tier": number.vanity_tier,
        "version": number.version,
        "tenant_id": str(number.tenant_id) if number.tenant_id else None,
        "reserved_until": iso(number.reserved_until),
        "quarantine_until": iso(number.quarantine_until),
        "lease": lease_snapshot(lease) if lease and lease.status == Lease.Status.ACTIVE else None,
    }
