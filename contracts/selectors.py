"""Reads for issuers and their signing keys."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from contracts.models import Contract, Issuer, SigningKey
from core import clock


def issuer_by_code(code: str) -> Issuer | None:
    return Issuer.objects.filter(code=code.strip().upper()).first() if code else None


def signing_keys_valid(issuer: Issuer, *, at: datetime | None = None) -> QuerySet[SigningKey]:
    """Keys usable at `at`: approved (four eyes), started, not expired, not revoked."""
    at = at or clock.now()
    return SigningKey.objects.filter(
        issuer=issuer, valid_from__lte=at, revoked_at__isnull=True, approved_at__isnull=False
    ).filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))


def signing_key_problem(key: SigningKey, *, at: datetime | None = None) -> str | None:
    """Why a key cannot be used now, or None when it can."""
    at = at or clock.now()
    if key.revoked_at is not None:
        return f"revoked at {key.revoked_at.isoformat()}"
    if key.valid_to is not None and key.valid_to <= at:
        return f"expired at {key.valid_to.isoformat()}"
    if key.valid_from > at:
        return f"not valid before {key.valid_from.isoformat()}"
    if key.approved_at is None:
        return f"awaiting approval by a second user (installed by {key.created_by or 'unknown'})"
    return None


def issuer_by_id_or_code(value: str) -> Issuer | None:
    """An issuer by numeric id, or else by its code (the `{id}` of the issuer routes, ADR 0900)."""
    if value.isdigit():
        return Issuer.objects.filter(pk=int(value)).first()
    return issuer_by_code(value[:64])


def signing_keys_of(issuer: Issuer) -> QuerySet[SigningKey]:
    """All of an issuer's keys, newest first (usable or not)."""
    return SigningKey.objects.filter(issuer=issuer).select_related("issuer").order_by("-valid_from", "id")


def active_contract(issuer: Issuer) -> Contract | None:
    return Contract.objects.filter(issuer=issuer, status=Contract.Status.ACTIVE).order_by("-starts_on").first()
