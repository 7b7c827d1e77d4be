"""Reads for issuers and their signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet

from contracts.models import Contract, Issuer, SigningKey
from core import clock
from numbering.lifecycle import HELD_STATES, State
from numbering.models import Number


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


# --- a contract's numbers (issue 16, ADR 1610) -------------------------------------------------


def contract_numbers_q(contract_id: int) -> Q:
    """A contract's numbers: its blocks' numbers, and those of blocks an import under the
    contract created without a contract of their own (the link numbering/cas.py guards)."""
    return Q(block__contract_id=contract_id) | Q(
        block__contract__isnull=True, block__inventory_import__contract_id=contract_id
    )


def contract_numbers(contract_id: int) -> QuerySet[Number]:
    return Number.objects.filter(contract_numbers_q(contract_id))


def contract_termination_preview(contract_id: int) -> dict[str, Any]:
    """What terminating the contract would do, read in the caller's (platform) scope:
    numbers per state, and per tenant the numbers it holds (to be recalled at the end date)."""
    numbers = contract_numbers(contract_id)
    by_state = {state.value: 0 for state in State}
    for row in numbers.values("state").annotate(n=Count("id")).order_by():
        by_state[row["state"]] = row["n"]
    tenants: dict[str, dict[str, Any]] = {}
    held = (
        numbers.filter(state__in=list(HELD_STATES))
        .values("tenant_id", "tenant__name", "state")
        .annotate(n=Count("id"))
        .order_by("tenant__name", "tenant_id")
    )
    for row in held:
        entry = tenants.setdefault(
            str(row["tenant_id"]),
            {"tenant_id": str(row["tenant_id"]), "name": row["tenant__name"], "RESERVED": 0, "ASSIGNED": 0},
        )
        entry[row["state"]] = row["n"]
    return {
        "by_state": by_state,
        "retire_now": by_state[State.AVAILABLE] + by_state[State.QUARANTINED],
        "recall_at_end": by_state[State.RESERVED] + by_state[State.ASSIGNED],
        "tenants": list(tenants.values()),
        "total": sum(by_state.values()),
    }
