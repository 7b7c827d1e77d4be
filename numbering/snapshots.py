"""The one shape of a number, its lease and its reservation as the outside world sees it.

Every surface renders from here: the services' results (REST bodies, gRPC replies via the
servicer), the audit trail's before/after, the lease cache entry (`cache_entry`) and the
ValidateLease fallback read. A field added here reaches all of them at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from numbering.models import Lease, Number, Reservation, TierPriceChange


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def price_snapshot(change: TierPriceChange | None) -> dict[str, Any] | None:
    """A vanity tier's price as events, REST and audit show it (ADR 1650): amounts are
    decimal strings with two places, never floats."""
    if change is None:
        return None
    return {
        "tier": change.tier_id,
        "monthly_price": f"{change.monthly_price:.2f}",
        "setup_fee": f"{change.setup_fee:.2f}",
        "currency": change.currency,
    }


def price_columns(change: TierPriceChange | None) -> dict[str, Any]:
    """The price-in-force columns of a Reservation or Lease (empty: no tier price)."""
    if change is None:
        return {}
    return {
        "tier_code": change.tier_id,
        "monthly_price": change.monthly_price,
        "setup_fee": change.setup_fee,
        "currency": change.currency,
    }


def recorded_price(row: Lease | Reservation | None) -> dict[str, Any] | None:
    """The price recorded on a reservation or lease, in price_snapshot's shape."""
    if row is None or not row.tier_code or row.monthly_price is None or row.setup_fee is None:
        return None
    return {
        "tier": row.tier_code,
        "monthly_price": f"{row.monthly_price:.2f}",
        "setup_fee": f"{row.setup_fee:.2f}",
        "currency": row.currency,
    }


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


# The public fields of a number, in this order, on every surface (REST bodies name them
# through NumberSerializer, gRPC through numbering.v1.Number, events and audit through the
# snapshot itself); tests/numbering/test_snapshots.py keeps the surfaces in step.
NUMBER_FIELDS = (
    "number",
    "kind",
    "state",
    "operator_code",
    "vanity",
    "vanity_tier",
    "version",
    "tenant_id",
    "reserved_until",
    "quarantine_until",
)


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


def cache_entry(
    *,
    state: str | None,
    tenant_id: str | None,
    lease_id: str | None,
    expires_at: str | None,
    kind: str,
    operator_code: str,
) -> dict[str, Any]:
    """The lease cache's JSON for one number (what ValidateLease needs, nothing more)."""
    return {
        "state": state,
        "tenant_id": tenant_id,
        "lease_id": lease_id,
        "expires_at": expires_at,
        "kind": kind,
        "operator_code": operator_code,
    }


def cache_entry_of(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The cache entry of a number snapshot (after a committed change)."""
    lease = snapshot.get("lease") or {}
    return cache_entry(
        state=snapshot["state"],
        tenant_id=snapshot.get("tenant_id"),
        lease_id=lease.get("lease_id"),
        expires_at=lease.get("expires_at"),
        kind=snapshot["kind"],
        operator_code=snapshot.get("operator_code", ""),
    )
