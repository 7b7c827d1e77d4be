"""Contract status changes (DESIGN §2, admin API `contracts/{id}/suspend|terminate`).

Each change locks the contract row, checks the transition, writes the audit event in the
same transaction, and honours an idempotency key (scope = actor identity + key).
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_append
from contracts.models import Contract
from numbering import errors, idempotency
from numbering.actors import Actor

# action -> (states it may start from, target state)
CONTRACT_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "suspend": (frozenset({Contract.Status.ACTIVE}), Contract.Status.SUSPENDED),
    "terminate": (
        frozenset({Contract.Status.DRAFT, Contract.Status.ACTIVE, Contract.Status.SUSPENDED}),
        Contract.Status.TERMINATED,
    ),
}


def contract_snapshot(contract: Contract) -> dict[str, Any]:
    return {
        "id": contract.id,
        "reference": contract.reference,
        "issuer": contract.issuer.code,
        "kind": contract.kind,
        "status": contract.status,
        "starts_on": contract.starts_on.isoformat() if contract.starts_on else None,
        "ends_on": contract.ends_on.isoformat() if contract.ends_on else None,
        "agreed_prefixes": list(contract.agreed_prefixes),
    }


def _change_status(
    *, action: str, contract_id: int, actor: Actor, reason: str, idempotency_key: str | None
) -> dict[str, Any]:
    if actor.is_tenant:
        raise errors.ValidationError(f"action: {action} is a staff action", field="action")
    sources, target = CONTRACT_TRANSITIONS[action]
    with transaction.atomic():
        if idempotency_key:
            stored = idempotency.claim(
                scope=actor.identity,
                key=idempotency_key,
                request={"action": f"contract_{action}", "contract_id": contract_id, "reason": reason},
            )
            if stored is not None:
                return json.loads(stored)
        contract = Contract.objects.select_for_update().select_related("issuer").filter(id=contract_id).first()
        if contract is None:
            raise errors.NotFound(f"contract {contract_id} not found", field="contract_id")
        if contract.status not in sources:
            raise errors.InvalidTransition(
                f"contract {contract.reference} is {contract.status}; "
                f"{action} needs one of {', '.join(sorted(sources))}"
            )
        before = contract_snapshot(contract)
        contract.status = target
        if action == "terminate" and (contract.ends_on is None or contract.ends_on > timezone.localdate()):
            contract.ends_on = timezone.localdate()
        contract.save(update_fields=["status", "ends_on", "updated_at"])
        after = contract_snapshot(contract)
        audit_append(
            actor=actor.identity,
            action=f"contract_{action}",
            object_type="contract",
            object_id=contract.reference,
            before=before,
            after={**after, "reason": reason},
        )
        response = {"contract": after, "reason": reason}
        if idempotency_key:
            return json.loads(idempotency.store(scope=actor.identity, key=idempotency_key, response=response))
        return json.loads(idempotency.canonical(response))


def contract_suspend(
    *, contract_id: int, actor: Actor, reason: str = "", idempotency_key: str | None = None
) -> dict[str, Any]:
    return _change_status(
        action="suspend", contract_id=contract_id, actor=actor, reason=reason, idempotency_key=idempotency_key
    )


def contract_terminate(
    *, contract_id: int, actor: Actor, reason: str = "", idempotency_key: str | None = None
) -> dict[str, Any]:
    return _change_status(
        action="terminate", contract_id=contract_id, actor=actor, reason=reason, idempotency_key=idempotency_key
    )
