"""Reads of numbers, reservations, leases and tenant pools (the cache-first ValidateLease
lookup lives in numbering/lease_lookup.py).

Selectors return QuerySets the API filters with numbering/filters.py. They rely on the
RLS scope the caller has set (a tenant sees its own rows plus AVAILABLE inventory), and
tenant selectors also filter on the tenant explicitly, so a missing scope can never widen
what a tenant sees.

`available_candidates_for_update` is the reserve-by-criteria query: it lives here, not
in cas.py, because it is a locking *read* built from the same search criteria as the
inventory search; the state change itself still goes through number_reserve → cas.py
(ADR 0402).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from audit.models import AuditEvent
from core import errors
from core.formats import ascii_digits, normalize_number, strip_separators
from core.query_shapes import QueryShapes
from numbering.lifecycle import CLOSED_CONTRACT_STATUSES, HELD_STATES, State
from numbering.models import Lease, Number, Reservation, TierPriceChange, VanityTier
from pools.models import TenantPool

# Both run on ASCII: strip_separators/ascii_digits first read Persian and Arabic-Indic digits.
_PREFIX = re.compile(r"^\+?[0-9]{1,15}$")
_PATTERN = re.compile(r"^[0-9*?]{1,20}$")

SHORT_CODE_MAX_DIGITS = 5  # core.formats._SHORT: ^[1-9][0-9]{2,4}$

PREFIX_RULE = (
    "digits with an optional leading + (any number format: +9379, 009379, 9379, 079, 79, 40; "
    "ASCII, Persian or Arabic-Indic digits)"
)
PATTERN_RULE = (
    "digits with * (any run of digits) and ? (one digit), e.g. *777* or 4?4?, at most 20 characters "
    "(ASCII, Persian or Arabic-Indic digits)"
)


def starts_with_q(prefix: str) -> Q:
    """`number` starts with `prefix` ([+0-9] only), as a range of the COLLATE "C" column:
    `number >= prefix AND number < prefix-with-its-last-byte-plus-one`. Unlike LIKE, these
    comparisons are leakproof, so the planner may use them as index conditions under RLS
    (ADR 1120)."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return Q(number__gte=prefix, number__lt=upper)


def prefix_q(value: str, *, field: str = "prefix") -> Q:
    """A prefix in any number format: +9379…, 9379…, 079… (national) or bare digits (an
    operator prefix after +93, or the start of a short code)."""
    compact = strip_separators(value or "")
    if not _PREFIX.match(compact) or compact == "+":
        raise errors.ValidationError(
            f"{field}: {value[:32]!r} is not a valid prefix; expected {PREFIX_RULE}", field=field
        )
    if compact.startswith("+"):
        return starts_with_q(compact)
    if compact.startswith("00"):  # the international prefix as dialled in Afghanistan
        return starts_with_q("+" + compact[2:])
    if compact.startswith("0"):
        return starts_with_q("+93" + compact[1:])
    q = starts_with_q("+93" + compact)
    # A short code has at most 5 digits (core/formats.py, CHECK number_ascii_msisdn_or_short_code):
    # a longer prefix cannot start one, and one range less keeps the search an index range.
    if len(compact) <= SHORT_CODE_MAX_DIGITS:
        q |= starts_with_q(compact)
    if compact.startswith("93"):
        q |= starts_with_q("+" + compact)
    return q


def pattern_q(value: str, *, field: str = "pattern") -> Q:
    """A digit pattern matched against every digit of the stored number (E.164 digits
    include the 93 country code). Only digits, * and ? reach the regex: nothing a caller
    sends can be a regex construct."""
    raw, value = value, ascii_digits(value or "")
    if not value or not _PATTERN.match(value):
        raise errors.ValidationError(
            f"{field}: {raw[:32]!r} is not a valid pattern; expected {PATTERN_RULE}", field=field
        )
    body = "".join("[0-9]*" if ch == "*" else "[0-9]" if ch == "?" else ch for ch in value)
    q = Q(number__regex=r"^\+?" + body + "$")
    # A regex is not leakproof: under RLS it is only a filter. Its leading digits bound it to
    # one index range per form (with and without +); a pattern that starts with a wildcard
    # walks AVAILABLE rows in number order until the page is full (ADR 1120).
    lead = re.match(r"[0-9]*", value).group(0)  # type: ignore[union-attr]
    if lead:
        q &= starts_with_q(lead) | starts_with_q("+" + lead)
    return q


def number_criteria_q(
    *,
    number: str | None = None,
    kind: str | None = None,
    issuer: str | None = None,
    prefix: str | None = None,
    pattern: str | None = None,
    vanity_tier: str | None = None,
    vanity: bool | None = None,
) -> Q:
    q = Q()
    if number:
        q &= Q(number=normalize_number(number))
    if kind:
        if kind not in Number.Kind.values:
            raise errors.ValidationError(f"kind: must be one of {', '.join(Number.Kind.values)}", field="kind")
        q &= Q(kind=kind)
    if issuer:
        q &= Q(issuer__code__iexact=issuer)
    if prefix:
        q &= prefix_q(prefix)
    if pattern:
        q &= pattern_q(pattern)
    if vanity_tier:
        q &= Q(vanity_tier=vanity_tier)
    if vanity is not None:
        q &= Q(vanity=vanity)
    return q


# --- numbers ---------------------------------------------------------------------------------


def number_search(queryset: QuerySet[Number], term: str) -> QuerySet[Number]:
    """Staff search by any format: a whole number finds exactly it, a partial one is a
    prefix (prefix_q's rules), anything else finds nothing (never a full scan)."""
    term = (term or "").strip()
    if not term:
        return queryset
    try:
        return queryset.filter(number=normalize_number(term))
    except errors.ValidationError:
        pass
    try:
        return queryset.filter(prefix_q(term))
    except errors.ValidationError:
        return queryset.none()


def number_list() -> QuerySet[Number]:
    return Number.objects.select_related("issuer", "pool")


def _entitled_q(tenant_id: uuid.UUID) -> Q:
    # Numbers outside any pool are reservable by any tenant (services/_check_entitlement).
    # The entitled pools are a subquery of the search itself, not two statements before it
    # (ADR 1120: a search page is one statement).
    # A deactivated tenant pool or inventory pool entitles no one (ADR 1620).
    entitled = TenantPool.inventory_pools.through.objects.filter(
        tenantpool__tenant_id=tenant_id,
        tenantpool__deactivated_at__isnull=True,
        inventorypool__deactivated_at__isnull=True,
    ).values("inventorypool_id")
    return Q(pool_id__in=entitled) | Q(pool__isnull=True)


def closed_contract_q() -> Q:
    """Numbers whose contract is SUSPENDED or TERMINATED (block → contract, else the block's
    import → contract; the same link as the CONTRACT_OPEN guard in numbering/cas.py)."""
    closed = list(CLOSED_CONTRACT_STATUSES)
    return Q(block__contract__status__in=closed) | Q(
        block__contract__isnull=True, block__inventory_import__contract__status__in=closed
    )


def number_available_for_tenant(*, tenant_id: uuid.UUID) -> QuerySet[Number]:
    """AVAILABLE inventory in the pools the tenant is entitled to (what it may reserve);
    numbers of a suspended or terminated contract are not offered (ADR 1610)."""
    return number_list().filter(_entitled_q(tenant_id), state=State.AVAILABLE).exclude(closed_contract_q())


def available_page(
    *,
    tenant_id: uuid.UUID,
    criteria: Q,
    descending: bool,
    after: str | None,
    offset: int,
    limit: int,
    columns: tuple[str, ...],
) -> QuerySet[Number]:
    """One page of the tenant search as rows of `columns`: what the tenant may reserve
    (number_available_for_tenant) matching `criteria`, in number order from just after
    `after`. The web compiles it once per shape of the criteria (core/query_shapes.py), so
    it depends on its arguments only."""
    rows = number_available_for_tenant(tenant_id=tenant_id).filter(criteria)
    rows = rows.order_by("-number" if descending else "number")
    if after is not None:
        rows = rows.filter(**{"number__lt" if descending else "number__gt": after})
    return rows.values(*columns)[offset : offset + limit]


def number_held_by_tenant(*, tenant_id: uuid.UUID) -> QuerySet[Number]:
    return number_list().filter(tenant_id=tenant_id, state__in=list(HELD_STATES))


def number_get(*, number: str, queryset: QuerySet[Number] | None = None) -> Number:
    """One number by any input format, within what the caller may see (else NUMBER_NOT_FOUND)."""
    canonical = normalize_number(number)
    row = (queryset if queryset is not None else number_list()).filter(number=canonical).first()
    if row is None:
        raise errors.NumberNotFound(f"number {canonical} not found", field="number")
    return row


def number_tenant_view(*, number: str, tenant_id: uuid.UUID) -> Number:
    """Mine (held) or AVAILABLE; anything else is not found, so existence never leaks."""
    qs = number_list().filter(Q(tenant_id=tenant_id) | Q(state=State.AVAILABLE))
    return number_get(number=number, queryset=qs)


def number_history(*, number: Number, limit: int = 100, audit_limit: int | None = None) -> dict[str, Any]:
    """A number's holders (leases and reservations, newest first), its active lease and
    reservation, and its audit trail: the REST detail and the admin number page."""
    reservations = list(
        Reservation.objects.filter(number=number).select_related("tenant").order_by("-created_at", "id")[:limit]
    )
    leases = list(Lease.objects.filter(number=number).select_related("tenant").order_by("-starts_at", "id")[:limit])
    holders: list[dict[str, Any]] = [
        {
            "kind": "lease",
            "tenant": lease.tenant,
            "start": lease.starts_at,
            "end": lease.ended_at,
            "status": lease.status,
            "detail": lease.end_reason,
        }
        for lease in leases
    ] + [
        {
            "kind": "reservation",
            "tenant": r.tenant,
            "start": r.created_at,
            "end": r.ended_at,
            "status": r.status,
            "detail": "",
        }
        for r in reservations
    ]
    holders.sort(key=lambda h: h["start"], reverse=True)
    return {
        "reservations": reservations,
        "leases": leases,
        "holder_history": holders,
        "active_lease": next((lease for lease in leases if lease.status == Lease.Status.ACTIVE), None),
        "active_reservation": next((r for r in reservations if r.status == Reservation.Status.ACTIVE), None),
        "audit_events": list(
            AuditEvent.objects.filter(object_type="number", object_id=number.number).order_by("-id")[
                : audit_limit or limit
            ]
        ),
    }


def available_candidates_queryset(
    *, tenant_id: uuid.UUID, criteria: Q, exclude_ids: Iterable[int] = ()
) -> QuerySet[Number, Any]:
    """The locking query of available_candidates_for_update, as (id, number) rows (its plan
    is pinned by tests/numbering/test_search_plans.py)."""
    rows = (
        Number.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(_entitled_q(tenant_id), criteria, state=State.AVAILABLE)
        .exclude(closed_contract_q())
    )
    exclude_ids = list(exclude_ids)
    if exclude_ids:
        rows = rows.exclude(id__in=exclude_ids)
    return rows.order_by("number").values("id", "number")


# Compiled once per shape of the criteria and per limit, as the search page is (ADR 1120).
_CANDIDATES = QueryShapes(
    lambda *, tenant_id, criteria, limit: available_candidates_queryset(tenant_id=tenant_id, criteria=criteria)[:limit]
)


def available_candidates_for_update(
    *, tenant_id: uuid.UUID, criteria: Q, limit: int, exclude_ids: Collection[int] = ()
) -> list[dict[str, Any]]:
    """Up to `limit` AVAILABLE numbers ({"id", "number"}) matching `criteria` in the
    tenant's entitled pools, row-locked with FOR UPDATE SKIP LOCKED: rows another
    transaction is working on are skipped, not waited for, so a busy pool never looks empty
    and two reservers never pick the same row. Must run inside the caller's transaction."""
    if exclude_ids:  # a further round after lost candidates: rare, and the ids are part of the SQL
        return list(
            available_candidates_queryset(tenant_id=tenant_id, criteria=criteria, exclude_ids=exclude_ids)[:limit]
        )
    return _CANDIDATES.rows(tenant_id=tenant_id, criteria=criteria, limit=limit)


# --- reservations, leases, pools -------------------------------------------------------------


def reservation_list(*, tenant_id: uuid.UUID | None = None) -> QuerySet[Reservation]:
    qs = Reservation.objects.select_related("number", "number__issuer")
    return qs.filter(tenant_id=tenant_id) if tenant_id else qs


def lease_list(*, tenant_id: uuid.UUID | None = None) -> QuerySet[Lease]:
    qs = Lease.objects.select_related("number", "number__issuer", "tenant")
    return qs.filter(tenant_id=tenant_id) if tenant_id else qs


def tenant_pool_usage(*, tenant_id: uuid.UUID) -> dict[str, Any]:
    pool = TenantPool.objects.filter(tenant_id=tenant_id).prefetch_related("inventory_pools").first()
    if pool is None:
        raise errors.NotFound("this tenant has no tenant pool", field="tenant_id")
    held = (
        Number.objects.filter(tenant_id=tenant_id, state__in=list(HELD_STATES))
        .values("kind", "state")
        .annotate(n=Count("id"))
    )
    usage: dict[str, dict[str, int]] = {k: {"reserved": 0, "assigned": 0} for k in Number.Kind.values}
    for row in held:
        usage[row["kind"]][row["state"].lower()] = row["n"]
    return {
        "tenant_id": str(tenant_id),
        "inventory_pools": [p.code for p in pool.inventory_pools.all()],
        "quotas": {"MSISDN": pool.quota_msisdn, "SHORT_CODE": pool.quota_short_code},
        "usage": {
            kind: {
                **u,
                "held": u["reserved"] + u["assigned"],
                "remaining": max(pool.quota_for(kind) - u["reserved"] - u["assigned"], 0),
            }
            for kind, u in usage.items()
        },
        "default_lease_days": pool.default_lease_days,
        "auto_renew_default": pool.auto_renew_default,
        "reservation_ttl_seconds": pool.reservation_ttl_seconds,
    }


# --- vanity tiers and prices (ADR 1650) -------------------------------------------------------


def vanity_tier_list(*, active_only: bool = False) -> QuerySet[VanityTier]:
    rows = VanityTier.objects.all()
    return rows.filter(is_active=True) if active_only else rows


def vanity_tier_codes() -> list[str]:
    """The active tier codes (imports and admin filters read them; they are data now)."""
    return list(VanityTier.objects.filter(is_active=True).order_by("code").values_list("code", flat=True))


def tier_price_in_force(tier_code: str, at: datetime) -> TierPriceChange | None:
    """The price of one tier at `at`: its latest approved change whose effective_from has
    come (one indexed query, index tier_price_in_force). None: the tier has no price yet."""
    if not tier_code:
        return None
    return (
        TierPriceChange.objects.filter(
            tier_id=tier_code, status=TierPriceChange.Status.APPROVED, effective_from__lte=at
        )
        .order_by("-effective_from", "-id")
        .first()
    )


def tier_prices_in_force(at: datetime) -> dict[str, TierPriceChange]:
    """Every tier's price at `at` in one query (search pages, the tier list)."""
    rows = (
        TierPriceChange.objects.filter(status=TierPriceChange.Status.APPROVED, effective_from__lte=at)
        .order_by("tier_id", "-effective_from", "-id")
        .distinct("tier_id")
    )
    return {row.tier_id: row for row in rows}


# The approved price schedule as this process last read it: (monotonic time read, tier ->
# its approved changes newest first). Search pages show prices from it (tier_prices_shown).
_price_schedule: tuple[float, dict[str, list[TierPriceChange]]] | None = None


def tier_prices_shown(at: datetime) -> dict[str, TierPriceChange]:
    """tier_prices_in_force(at) for a search page to show, from this process's copy of the
    approved price schedule, read again when it is TIER_PRICE_CACHE_SECONDS old or when this
    process decided a price (forget_price_schedule). The schedule holds future changes too,
    so a change whose effective_from comes is shown on time; only a decision taken in another
    process shows up to TIER_PRICE_CACHE_SECONDS late (ADR 1650, 2026-12-03 amendment). What a
    reservation or lease records is never read from here (services.tiers.price_for_number)."""
    global _price_schedule
    seconds = settings.TIER_PRICE_CACHE_SECONDS
    if seconds <= 0:
        return tier_prices_in_force(at)
    cached = _price_schedule
    if cached is None or time.monotonic() - cached[0] >= seconds:
        read_at = time.monotonic()
        schedule: dict[str, list[TierPriceChange]] = {}
        for change in TierPriceChange.objects.filter(status=TierPriceChange.Status.APPROVED).order_by(
            "tier_id", "-effective_from", "-id"
        ):
            schedule.setdefault(change.tier_id, []).append(change)
        cached = _price_schedule = (read_at, schedule)
    shown = {}
    for tier, changes in cached[1].items():
        # An APPROVED change always has its effective_from (services.tiers._decide sets it).
        in_force = next((c for c in changes if c.effective_from is not None and c.effective_from <= at), None)
        if in_force is not None:
            shown[tier] = in_force
    return shown


def forget_price_schedule() -> None:
    """The next tier_prices_shown reads the schedule again (a price decision committed)."""
    global _price_schedule
    _price_schedule = None


def tier_price_change_list(*, tier_code: str | None = None) -> QuerySet[TierPriceChange]:
    rows = TierPriceChange.objects.select_related("tier")
    return rows.filter(tier_id=tier_code) if tier_code else rows
