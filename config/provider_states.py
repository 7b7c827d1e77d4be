"""Pact provider states (issue 17, ADR 1700): the state-change endpoint the Pact verifier
calls before each interaction, `POST /_pact/provider-states`.

It exists only when PACT_PROVIDER_STATES_ENABLED is on — a test-only setting that the
settings refuse when NUMBERING_ENV=production — so config/urls.py routes it only then, and
the view answers 404 itself if the setting is off anyway. Every state is put in place
through the real services (reserve, assign, recall, end_quarantine, the regulator export)
as the actor `system:pact-provider-states`; the only direct write is the one a due guard
needs (a lease whose end is already past), made by `move_lease_end` as a commit would make
it, which the lifecycle tests share (ADR 1200 amendment of 2026-12-03).

States are idempotent: a number the verifier asks for again is first brought back to
AVAILABLE through recall → quarantine → end_quarantine (provider-state numbers are test
numbers, whose cool-off is 0 days), so the same pact can be verified twice on one database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from contracts.models import Issuer
from core import errors
from core.actors import Actor
from core.formats import normalize_number
from core.rls import rls_scope
from numbering import lease_cache, services
from numbering.lifecycle import State
from numbering.models import Lease, Number, VanityTier
from numbering.selectors import tier_price_in_force
from numbering.snapshots import number_snapshot
from pools.models import InventoryPool, Tenant, TenantPool

ACTOR = Actor.system("pact-provider-states")

# pool code -> (kind, vanity): the pools a provider-state tenant is entitled to.
_POOLS = {
    "GENERAL_MSISDN": ("MSISDN", False),
    "STANDARD_SHORT_CODES": ("SHORT_CODE", False),
    "VANITY_SHORT_CODES": ("SHORT_CODE", True),
}
# MSISDN prefix (after +93) -> issuer code; short codes are ATRA's (DESIGN §2 demo prefixes).
_MSISDN_ISSUERS = {
    "70": "AWCC",
    "71": "AWCC",
    "72": "ROSHAN",
    "79": "ROSHAN",
    "73": "ETISALAT_AF",
    "78": "ETISALAT_AF",
    "76": "MTN_AF",
    "77": "MTN_AF",
    "74": "SALAAM",
}


class StateError(Exception):
    """A provider state that cannot be put in place (bad parameters or a clash)."""


def _platform(fn: Callable[[], Any]) -> Any:
    with transaction.atomic(), rls_scope(platform=True):
        return fn()


def _param(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise StateError(f"{name}: required (a non-empty string)")
    return value.strip()


def _tenant_id(params: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(_param(params, "tenant_id"))
    except ValueError:
        raise StateError("tenant_id: must be a UUID") from None


def _pools() -> dict[str, InventoryPool]:
    pools = {}
    for code, (kind, vanity) in _POOLS.items():
        pools[code], _ = InventoryPool.objects.get_or_create(
            code=code, defaults={"name": code.replace("_", " ").title(), "kind": kind, "vanity": vanity}
        )
    return pools


def ensure_tenant(params: dict[str, Any]) -> dict[str, Any]:
    tenant_id = _tenant_id(params)

    def create() -> None:
        tenant, _ = Tenant.objects.get_or_create(
            id=tenant_id,
            defaults={
                "name": f"Pact tenant {str(tenant_id)[:8]}",
                "registration_no": f"PACT-{tenant_id.hex[:12].upper()}",
                "segment": Tenant.Segment.ENTERPRISE,
            },
        )
        pool, _ = TenantPool.objects.get_or_create(
            tenant=tenant, defaults={"quota_msisdn": 1000, "quota_short_code": 1000, "default_lease_days": 30}
        )
        pool.inventory_pools.add(*_pools().values())

    _platform(create)
    return {"tenant_id": str(tenant_id)}


def _issuer_for(number: str) -> Issuer:
    if number.startswith("+93"):
        code = _MSISDN_ISSUERS.get(number[3:5])
        if code is None:
            raise StateError(f"number: {number} has no demo MNO prefix (70-79)")
        prefixes = [p for p, c in _MSISDN_ISSUERS.items() if c == code]
        issuer, _ = Issuer.objects.get_or_create(
            code=code, defaults={"name": code, "kind": Issuer.Kind.MNO, "msisdn_prefixes": prefixes}
        )
        return issuer
    issuer, _ = Issuer.objects.get_or_create(code="ATRA", defaults={"name": "ATRA", "kind": Issuer.Kind.REGULATOR})
    return issuer


def _back_to_available(number: str) -> None:
    """Walk an existing number back to AVAILABLE through the services (0-day test cool-off)."""
    row = _platform(lambda: Number.objects.get(number=number))
    if not row.is_test:
        raise StateError(f"number: {number} exists and is not a test number; provider states only reuse their own")
    if row.state in {State.RESERVED, State.ASSIGNED}:
        services.number_recall(number=number, actor=ACTOR, reason="PACT_STATE_RESET")
        row = _platform(lambda: Number.objects.get(number=number))
    if row.state == State.QUARANTINED:
        _platform(lambda: Number.objects.filter(id=row.id).update(quarantine_until=timezone.now()))
        services.number_end_quarantine(number=number, actor=ACTOR)


def ensure_available(params: dict[str, Any]) -> dict[str, Any]:
    number = normalize_number(_param(params, "number"))
    vanity_tier = str(params.get("vanity_tier") or "")

    def create() -> bool:
        if Number.objects.filter(number=number).exists():
            return False
        short = not number.startswith("+")
        pool = "VANITY_SHORT_CODES" if vanity_tier else "STANDARD_SHORT_CODES" if short else "GENERAL_MSISDN"
        Number.objects.create(
            number=number,
            kind=Number.Kind.SHORT_CODE if short else Number.Kind.MSISDN,
            issuer=_issuer_for(number),
            pool=_pools()[pool],
            vanity=bool(vanity_tier),
            vanity_tier=vanity_tier,
            is_test=True,
        )
        return True

    if not _platform(create):
        _back_to_available(number)
    if vanity_tier:
        _ensure_tier_price(vanity_tier)
    return {"number": number}


def _ensure_tier_price(code: str) -> None:
    """A vanity number's tier has a price in force (ADR 1650), so its lease events carry one:
    a tier the database lacks is created and priced through the four-eyes services."""
    if tier_price_in_force(code, timezone.now()) is not None:
        return
    with transaction.atomic():
        tier = VanityTier.objects.filter(code=code).first()
        if tier is None:
            tier = VanityTier(code=code, name=code.title())
            services.vanity_tier_save(tier, actor=ACTOR, save=tier.save)
        change = services.tier_price_propose(
            tier_code=code, monthly_price="25000.00", setup_fee="50000.00", actor=ACTOR
        )
        services.tier_price_approve(change_id=change.id, actor=Actor.system("pact-provider-approver"))


def ensure_unknown(params: dict[str, Any]) -> dict[str, Any]:
    number = normalize_number(_param(params, "number"))
    if _platform(lambda: Number.objects.filter(number=number).exists()):
        raise StateError(f"number: {number} exists, so it cannot be the unknown number of this state")
    return {"number": number}


def ensure_reserved(params: dict[str, Any]) -> dict[str, Any]:
    values = {**ensure_tenant(params), **ensure_available(params)}
    result = services.number_reserve(number=values["number"], tenant_id=values["tenant_id"], actor=ACTOR)
    assert result.reservation is not None
    return {**values, "reservation_id": result.reservation["reservation_id"]}


def ensure_assigned(params: dict[str, Any]) -> dict[str, Any]:
    values = {**ensure_tenant(params), **ensure_available(params)}
    result = services.number_assign(number=values["number"], tenant_id=values["tenant_id"], actor=ACTOR)
    assert result.lease is not None
    return {**values, "lease_id": result.lease["lease_id"]}


def move_lease_end(number: str, expires_at: datetime) -> None:
    """End the active lease of `number` at `expires_at` by a direct write: no service moves a
    lease's end into the past, and the run-out state below (like the lifecycle tests' due
    leases) needs one.

    The write is made the way every service commit is: the number's version goes up with it,
    and the cache entry of that new version is written after the commit. A write of an
    older entry still on its way (the cache-sync drains the number's last change
    concurrently and may have read the row just before this commit) then carries an older
    version and is refused. Deleting the cached entry instead would let that late write put
    the old end back, which a CI run once answered as valid=true."""

    def write() -> None:
        Lease.objects.filter(number__number=number, status=Lease.Status.ACTIVE).update(expires_at=expires_at)
        Number.objects.filter(number=number).update(version=F("version") + 1)
        row = Number.objects.select_related("issuer").get(number=number)
        lease_cache.refresh_after_commit(
            number_snapshot(row, Lease.objects.get(number=row, status=Lease.Status.ACTIVE))
        )

    _platform(write)


def ensure_lease_past_its_end(params: dict[str, Any]) -> dict[str, Any]:
    """ASSIGNED, but the lease ended a minute ago and the hourly expiry has not run yet."""
    values = ensure_assigned(params)
    move_lease_end(values["number"], timezone.now() - timedelta(minutes=1))
    return values


def ensure_uploaded_export(params: dict[str, Any]) -> dict[str, Any]:
    from exports import services as export_services

    period = _param(params, "period")
    outcome = export_services.regulator_export_run(period=period, actor=ACTOR)
    if outcome.export.status != "UPLOADED":
        raise StateError(f"period: the export of {period} is {outcome.export.status}: {outcome.message}")
    return {"period": period, "export_id": outcome.export.pk}


STATES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "an active tenant": ensure_tenant,
    "an available number": lambda p: {**(ensure_tenant(p) if p.get("tenant_id") else {}), **ensure_available(p)},
    "an unknown number": ensure_unknown,
    "a number reserved by the tenant": ensure_reserved,
    "a number assigned to the tenant": ensure_assigned,
    "a number assigned to the tenant whose lease has run out": ensure_lease_past_its_end,
    "an uploaded regulator export": ensure_uploaded_export,
}


@csrf_exempt
@require_POST
def provider_states(request: HttpRequest) -> JsonResponse:
    """Body (the Pact verifier's): {"state": name, "params": {...}, "action": "setup"|"teardown"}.
    Answers the values the state created (ids), which pacts may use through
    `fromProviderState` expressions."""
    if not settings.PACT_PROVIDER_STATES_ENABLED:
        raise Http404("provider states are disabled")
    try:
        body = json.loads(request.body or b"{}")
    except json.JSONDecodeError:
        return JsonResponse({"detail": "body: must be JSON"}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"detail": "body: must be a JSON object"}, status=400)
    name, action = body.get("state") or "", body.get("action") or "setup"
    params = body.get("params")
    params = {} if params is None else params
    if action == "teardown" or name == "":
        return JsonResponse({})  # nothing to undo: states are idempotent (module docstring)
    handler = STATES.get(name)
    if handler is None:
        return JsonResponse({"detail": f"state: unknown provider state {name!r}; known: {sorted(STATES)}"}, status=400)
    if not isinstance(params, dict):
        return JsonResponse({"detail": "params: must be a JSON object"}, status=400)
    try:
        return JsonResponse(handler(params))
    except (StateError, errors.DomainError) as exc:
        return JsonResponse({"detail": f"{name}: {exc}"}, status=409)
