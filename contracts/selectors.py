"""Reads for issuers and their signing keys."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from contracts.models import Contract, Issuer, SigningKey


def issuer_by_code(code: str) -> Issuer | None:
    return Issuer.objects.filter(code=code.strip().upper()).first() if code else None


def signing_keys_valid(issuer: Issuer, *, at: datetime | None = None) -> QuerySet[SigningKey]:
    """Keys usable at `at`: started, not expired, not revoked."""
    at = at or timezone.now()
    return SigningKey.objects.filter(issuer=issuer, valid_from__lte=at, revoked_at__isnull=True).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=at)
    )


def signing_key_problem(key: SigningKey, *, at: datetime | None = None) -> str | None:
    """Why a key cannot be used now, or None when it can."""
    at = at or timezone.now()
    if key.revoked_at is not None:
        return f"revoked at {key.revoked_at.isoformat()}"
    if key.valid_to is not None and key.valid_to <= at:
        return f"expired at {key.valid_to.isoformat()}"
    if key.valid_from > at:
        return f"not valid before {key.valid_from.isoformat()}"
    return None


def active_contract(issuer: Issuer) -> Contract | None:
    return Contract.objects.filter(issuer=issuer, status=Contract.Status.ACTIVE).order_by("-starts_on").first()
