"""Lease and reservation services addressed by their own ids (the REST surface): auto-renew,
renew by lease, cancel by reservation."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from audit.services import audit_append
from core import errors, idempotency, rls
from core.actors import Actor
from core.formats import parse_uuid
from numbering.models import Lease, Reservation
from numbering.services.actions import number_release, number_renew
from numbering.services.skeleton import MutationResult
from numbering.snapshots import lease_snapshot


def _own_active(model: Any, object_id: uuid.UUID, actor: Actor, purpose: str, *, lock: bool = False) -> Any:
    """The ACTIVE lease or reservation `object_id` as `actor` may see it (tenants: only their
    own, which RLS enforces too), or NOT_FOUND / INVALID_TRANSITION naming why not."""
    noun = model._meta.model_name  # "lease" / "reservation"
    qs = (model.objects.select_for_update() if lock else model.objects).select_related("number")
    if actor.tenant_id is not None:
        qs = qs.filter(tenant_id=actor.tenant_id)
    row = qs.filter(id=object_id).first()
    if row is None:
        raise errors.NotFound(f"{noun} {object_id} not found", field=f"{noun}_id")
    if row.status != model.Status.ACTIVE:
        raise errors.InvalidTransition(f"{noun} {object_id} is {row.status}; only an ACTIVE {noun} can {purpose}")
    return row


def lease_set_auto_renew(
    *, lease_id: uuid.UUID | str, auto_renew: bool, actor: Actor, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Turn a lease's auto-renewal on or off (audited). Tenants only reach their own leases."""
    lease_uuid = parse_uuid(lease_id, field="lease_id")
    if not isinstance(auto_renew, bool):
        raise errors.ValidationError("auto_renew: must be true or false", field="auto_renew")
    with transaction.atomic(), rls.scope_for(actor):
        # The tenant is part of the fingerprint: two tenants' users with the same subject
        # never see each other's stored responses.
        fingerprint = {
            "action": "lease_auto_renew",
            "lease_id": str(lease_uuid),
            "auto_renew": auto_renew,
            "tenant_id": str(actor.tenant_id),
        }

        def change() -> dict[str, Any]:
            lease = _own_active(Lease, lease_uuid, actor, "change auto-renew", lock=True)
            before = lease_snapshot(lease)
            if lease.auto_renew != auto_renew:
                lease.auto_renew = auto_renew
                lease.save(update_fields=["auto_renew"])
            after = lease_snapshot(lease)
            audit_append(
                actor=actor.identity,
                action="lease_auto_renew",
                object_type="number",
                object_id=lease.number.number,
                tenant_id=lease.tenant_id,
                before={"lease": before},
                after={"lease": after},
            )
            return {"lease": after, "number": lease.number.number}

        return idempotency.run(scope=actor.identity, key=idempotency_key, request=fingerprint, produce=change).response


def reservation_cancel(
    *, reservation_id: uuid.UUID | str, actor: Actor, idempotency_key: str | None = None
) -> MutationResult:
    """Cancel an ACTIVE reservation (RESERVED → AVAILABLE through number_release). The
    release is pinned to the number's version as read here, so if the number moved on
    meanwhile the cancel is refused (CONFLICT) instead of releasing something else."""
    res_uuid = parse_uuid(reservation_id, field="reservation_id")
    with transaction.atomic(), rls.scope_for(actor):
        fingerprint = {
            "action": "reservation_cancel",
            "reservation_id": str(res_uuid),
            "tenant_id": str(actor.tenant_id),
        }

        def cancel() -> dict[str, Any]:
            reservation = _own_active(Reservation, res_uuid, actor, "be cancelled")
            return number_release(
                number=reservation.number.number,
                actor=actor,
                tenant_id=reservation.tenant_id,
                reason="RESERVATION_CANCELLED",
                expected_version=reservation.number.version,
            ).to_dict()

        outcome = idempotency.run(scope=actor.identity, key=idempotency_key, request=fingerprint, produce=cancel)
    return MutationResult(**outcome.response, replayed=outcome.replayed)


def lease_renew(*, lease_id: uuid.UUID | str, actor: Actor, idempotency_key: str | None = None) -> MutationResult:
    """Renew the number of an ACTIVE lease by one term (number_renew), addressed by lease id."""
    lease_uuid = parse_uuid(lease_id, field="lease_id")
    with transaction.atomic(), rls.scope_for(actor):
        fingerprint = {"action": "lease_renew", "lease_id": str(lease_uuid), "tenant_id": str(actor.tenant_id)}

        def renew() -> dict[str, Any]:
            lease = _own_active(Lease, lease_uuid, actor, "be renewed")
            return number_renew(
                number=lease.number.number,
                actor=actor,
                tenant_id=lease.tenant_id,
                expected_version=lease.number.version,
            ).to_dict()

        outcome = idempotency.run(scope=actor.identity, key=idempotency_key, request=fingerprint, produce=renew)
    return MutationResult(**outcome.response, replayed=outcome.replayed)
