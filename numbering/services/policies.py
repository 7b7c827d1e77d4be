"""Quarantine cool-off policies (DESIGN §2.1): changed by staff with Legal's approval, audited."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from audit.services import audit_append
from core import authz, clock, errors, refdata
from core.actors import Actor
from core.outbox import outbox_enqueue
from numbering.models import QuarantinePolicy
from numbering.snapshots import iso


def quarantine_policy_update(
    *,
    case: str,
    actor: Actor,
    approved_by: str,
    approved_at: datetime | None = None,
    days: int | None = None,
    description: str | None = None,
) -> QuarantinePolicy:
    """Change a cool-off (DESIGN §2.1). Legal approves every change: the approver is required,
    the approval time defaults to now; audited with the approver and the staff user."""
    authz.require_platform(actor, "quarantine_policy.update")
    if not approved_by or not approved_by.strip():
        raise errors.ValidationError("approved_by: who approved the change is required", field="approved_by")
    approved_at = approved_at or clock.now()
    if approved_at > clock.now() + timedelta(minutes=5):
        raise errors.ValidationError("approved_at: must not be in the future", field="approved_at")
    if days is not None and not 0 <= days <= 3650:
        raise errors.ValidationError("days: must be between 0 and 3650", field="days")
    with transaction.atomic():
        policy = QuarantinePolicy.objects.select_for_update().filter(case=case).first()
        if policy is None:
            raise errors.NotFound(f"quarantine policy {case!r} not found", field="case")
        before = {
            "days": policy.days,
            "description": policy.description,
            "approved_by": policy.approved_by,
            "approved_at": iso(policy.approved_at),
        }
        if days is not None:
            policy.days = days
        if description is not None:
            policy.description = description
        policy.approved_by, policy.approved_at = approved_by.strip(), approved_at
        policy.save()
        after = {
            "days": policy.days,
            "description": policy.description,
            "approved_by": policy.approved_by,
            "approved_at": iso(policy.approved_at),
        }
        event = audit_append(
            actor=actor.identity,
            action="quarantine_policy.update",
            object_type="quarantine_policy",
            object_id=f"quarantine_policy:{case}",
            before=before,
            after=after,
        )
        outbox_enqueue(
            event_type=refdata.event_type("quarantine_policy", refdata.UPDATED),
            aggregate_id=f"quarantine_policy:{case}",
            data={
                "object_type": "quarantine_policy",
                "object_id": case,
                "actor": actor.identity,
                "changed": sorted(k for k in after if before[k] != after[k]),
                "before": before,
                "after": after,
                "audit_event_id": event.id,
            },
        )
        return policy
