"""Every state change of a number (DESIGN §2.1, §2.2), one function per action, and the
services built on them. REST views, gRPC servicers, admin actions, consumers and jobs all
call these; none of them writes a Number itself.

    skeleton.py  the shared run of every action: CAS, audit, outbox, idempotency, cache
    rules.py     entitlement, quota, tenant status, cool-off days, leaving a holder
    actions.py   number_reserve … number_reinstate (one per lifecycle action) + SERVICES
    batch.py     number_reserve_matching (n numbers by criteria, all or none)
    leases.py    lease_set_auto_renew, lease_renew, reservation_cancel
    policies.py  quarantine_policy_update
    tiers.py     tier_price_propose / _approve / _reject (four eyes), price_for_number
"""

from __future__ import annotations

from numbering.services.actions import (
    SERVICES,
    number_assign,
    number_end_quarantine,
    number_expire_lease,
    number_expire_reservation,
    number_extend_reservation,
    number_recall,
    number_reinstate,
    number_release,
    number_renew,
    number_reserve,
    number_retire,
)
from numbering.services.batch import MAX_RESERVE_BATCH, BatchResult, number_reserve_matching
from numbering.services.leases import lease_renew, lease_set_auto_renew, reservation_cancel
from numbering.services.policies import quarantine_policy_update
from numbering.services.rules import ASSIGNED_IN_ERROR, COMPLIANCE_REASONS, MAX_LEASE_DAYS
from numbering.services.skeleton import MutationResult
from numbering.services.tiers import (
    tier_price_approve,
    tier_price_check,
    tier_price_propose,
    tier_price_reject,
    vanity_tier_save,
)

__all__ = [
    "ASSIGNED_IN_ERROR",
    "COMPLIANCE_REASONS",
    "MAX_LEASE_DAYS",
    "MAX_RESERVE_BATCH",
    "SERVICES",
    "BatchResult",
    "MutationResult",
    "lease_renew",
    "lease_set_auto_renew",
    "number_assign",
    "number_end_quarantine",
    "number_expire_lease",
    "number_expire_reservation",
    "number_extend_reservation",
    "number_recall",
    "number_reinstate",
    "number_release",
    "number_renew",
    "number_reserve",
    "number_reserve_matching",
    "number_retire",
    "quarantine_policy_update",
    "reservation_cancel",
    "tier_price_approve",
    "tier_price_check",
    "tier_price_propose",
    "tier_price_reject",
    "vanity_tier_save",
]
