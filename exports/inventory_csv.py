"""The ad-hoc inventory CSV for staff: the numbers list, filtered like the numbers list,
formula-safe, streamed from a server-side cursor. Reads only."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery

from core import clock, errors
from core.actors import Actor
from core.csv_safety import csv_line
from core.formats import parse_uuid
from core.rls import rls_scope
from exports.report import CATEGORY_OF_STATE, FETCH_SIZE
from numbering.models import Lease, Number
from numbering.selectors import number_criteria_q

INVENTORY_COLUMNS = [
    "number", "kind", "state", "issuer_code", "vanity", "vanity_tier", "pool", "block", "contract_reference",
    "holder_registration_no", "holder_name", "reserved_until", "quarantine_until", "lease_expires_at",
    "state_changed_at", "version",
]  # fmt: skip
INVENTORY_FILTERS = ("state", "kind", "issuer", "vanity_tier", "tenant", "pool", "prefix")


def _inventory_queryset(filters: dict[str, str]) -> QuerySet[Number]:
    unknown = set(filters) - set(INVENTORY_FILTERS)
    if unknown:
        name = sorted(unknown)[0]
        raise errors.ValidationError(f"{name}: unknown filter (use {', '.join(INVENTORY_FILTERS)})", field=name)
    qs = Number.objects.all()
    # Trimmed, except the vanity tier, which is matched exactly as stored.
    value = {k: (v or "") if k == "vanity_tier" else (v or "").strip() for k, v in filters.items()}
    if value.get("state"):
        states = {s.strip().upper() for s in value["state"].split(",")}
        bad = states - set(CATEGORY_OF_STATE)
        if bad:
            raise errors.ValidationError(f"state: {sorted(bad)[0]!r} is not a number state", field="state")
        qs = qs.filter(state__in=states)
    if value.get("kind") and value["kind"].upper() not in Number.Kind.values:
        raise errors.ValidationError(f"kind: {value['kind']!r} must be MSISDN or SHORT_CODE", field="kind")
    if value.get("tenant"):
        qs = qs.filter(tenant_id=parse_uuid(value["tenant"], field="tenant"))
    if value.get("pool"):
        qs = qs.filter(pool__code=value["pool"])
    # kind, issuer, vanity tier and prefix mean what they mean in the numbers list.
    return qs.filter(
        number_criteria_q(
            kind=value.get("kind", "").upper() or None,
            issuer=value.get("issuer") or None,
            prefix=value.get("prefix") or None,
            vanity_tier=value.get("vanity_tier") or None,
        )
    )


def inventory_csv_rows(filters: dict[str, str], *, actor: Actor) -> Iterator[str]:
    """Formula-safe CSV lines of the numbers matching the numbers-list filters, streamed
    (server-side cursor) for a StreamingHttpResponse. Staff only: reads in platform scope.
    Bad filters raise ValidationError before the first line is produced."""
    if actor.is_tenant:
        raise errors.ValidationError("actor: the inventory export is for staff, not tenants", field="actor")
    qs = _inventory_queryset(filters)  # validates now, not on first iteration
    return _inventory_lines(qs)


def _inventory_lines(qs: QuerySet[Number]) -> Iterator[str]:
    yield csv_line(INVENTORY_COLUMNS)
    active_lease = Lease.objects.filter(number=OuterRef("pk"), status=Lease.Status.ACTIVE).values("expires_at")[:1]
    rows = (
        qs.select_related("issuer", "pool", "block__contract", "tenant")
        .annotate(lease_expires_at=Subquery(active_lease))
        .order_by("number")
    )
    with transaction.atomic(), rls_scope(platform=True):
        for n in rows.iterator(chunk_size=FETCH_SIZE):
            yield csv_line([
                n.number, n.kind, n.state, n.issuer.code, n.vanity, n.vanity_tier, n.pool.code if n.pool else "",
                n.block.name if n.block else "", n.block.contract.reference if n.block and n.block.contract else "",
                n.tenant.registration_no if n.tenant else "", n.tenant.name if n.tenant else "",
                n.reserved_until, n.quarantine_until, n.lease_expires_at, n.state_changed_at, n.version,
            ])  # fmt: skip


def inventory_csv_filename() -> str:
    """The download's file name, stamped with the clock's UTC time."""
    return f"inventory-{clock.now():%Y%m%dT%H%M%SZ}.csv"
