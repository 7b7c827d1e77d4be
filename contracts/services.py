"""Writes of the contracts app: issuers' signing keys, contract status changes, and the
decision whether an inventory import runs now or in the Celery worker (import_dispatch).

(The import pipeline itself lives in the contracts.imports package.) Every change writes
its audit event in the same transaction.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_append, audited_save
from contracts import signing
from contracts.imports import ImportOutcome, import_set_mode, run_import
from contracts.models import Contract, InventoryImport, Issuer, NumberBlock, SigningKey
from contracts.selectors import issuer_by_code
from core import authz, clock, errors, formats, idempotency, refdata
from core.actors import Actor
from core.outbox import outbox_enqueue

logger = logging.getLogger(__name__)


def _key_snapshot(key: SigningKey) -> dict[str, object]:
    return {
        "issuer": key.issuer.code,
        "fingerprint": key.fingerprint,
        "valid_from": key.valid_from.isoformat(),
        "valid_to": key.valid_to.isoformat() if key.valid_to else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "created_by": key.created_by,
        "approved_by": key.approved_by or None,
        "approved_at": key.approved_at.isoformat() if key.approved_at else None,
    }


def check_key_window(valid_from: datetime | None, valid_to: datetime | None) -> tuple[datetime, datetime]:
    """A new key's window (ADR 1350): not backdated beyond the clock skew, and no longer than
    the lifetime cap (an open end becomes the cap)."""
    now = clock.now()
    for name, value in (("valid_from", valid_from), ("valid_to", valid_to)):
        if value is not None and timezone.is_naive(value):
            raise errors.ValidationError(f"{name}: needs a time zone (ISO 8601 with offset, e.g. Z)", field=name)
    skew = timedelta(seconds=settings.SIGNING_KEY_CLOCK_SKEW_SECONDS)
    if valid_from is not None and valid_from < now - skew:
        raise errors.ValidationError(
            f"valid_from: may not lie in the past (more than {settings.SIGNING_KEY_CLOCK_SKEW_SECONDS} s before now)",
            field="valid_from",
        )
    start = valid_from or now
    max_days = settings.SIGNING_KEY_MAX_LIFETIME_DAYS
    if valid_to is None:
        return start, start + timedelta(days=max_days)
    if valid_to <= start:
        raise errors.ValidationError("valid_to: must be after valid_from", field="valid_to")
    if valid_to - start > timedelta(days=max_days):
        raise errors.ValidationError(
            f"valid_to: a key may live at most {max_days} days (SIGNING_KEY_MAX_LIFETIME_DAYS)", field="valid_to"
        )
    return start, valid_to


def signing_key_add(
    *,
    issuer_code: str,
    public_key_pem: str,
    actor: Actor,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> SigningKey:
    """Install an issuer's public key. Several keys per issuer may be valid at once (rotation).
    The key verifies imports only once a second, different staff user approved it
    (signing_key_approve)."""
    authz.require_platform(actor, "signing_key_add")
    issuer = issuer_by_code(issuer_code)
    if issuer is None:
        raise errors.ValidationError(f"issuer: unknown issuer code {issuer_code!r}", field="issuer")
    key = signing.load_public_key(public_key_pem)
    valid_from, valid_to = check_key_window(valid_from, valid_to)
    fp = signing.fingerprint(key)
    with transaction.atomic():
        existing = SigningKey.objects.select_related("issuer").filter(fingerprint=fp).first()
        if existing is not None:
            raise errors.ValidationError(
                f"public_key_pem: key {fp[:16]}… is already installed for issuer {existing.issuer.code}",
                field="public_key_pem",
            )
        row = SigningKey.objects.create(
            issuer=issuer,
            public_key_pem=signing.canonical_pem(key),
            fingerprint=fp,
            valid_from=valid_from,
            valid_to=valid_to,
            created_by=actor.identity,
        )
        audit_append(
            actor=actor.identity,
            action="signing_key.add",
            object_type="signing_key",
            object_id=f"key:{fp}",
            after=_key_snapshot(row),
        )
    return row


def signing_key_approve(*, fingerprint: str, actor: Actor) -> SigningKey:
    """The second pair of eyes: a different staff user (or system actor) than the one who
    installed the key approves it; only then does it verify imports. Approving an approved
    key changes nothing; a revoked key cannot be approved."""
    authz.require_platform(actor, "signing_key_approve")
    with transaction.atomic():
        key = SigningKey.objects.select_for_update().select_related("issuer").filter(fingerprint=fingerprint).first()
        if key is None:
            raise errors.NotFound(f"fingerprint: no signing key {fingerprint!r}", field="fingerprint")
        if key.approved_at is not None:
            return key
        if key.revoked_at is not None:
            raise errors.InvalidTransition(f"signing key {fingerprint[:16]}… is revoked; it cannot be approved")
        authz.require_second_pair_of_eyes(author=key.created_by, approver=actor, what="installed this key")
        before = _key_snapshot(key)
        key.approved_by = actor.identity
        key.approved_at = clock.now()
        key.save(update_fields=["approved_by", "approved_at"])
        audit_append(
            actor=actor.identity,
            action="signing_key.approve",
            object_type="signing_key",
            object_id=f"key:{fingerprint}",
            before=before,
            after=_key_snapshot(key),
        )
    return key


def signing_key_revoke(*, fingerprint: str, actor: Actor, reason: str = "") -> SigningKey:
    authz.require_platform(actor, "signing_key_revoke")
    with transaction.atomic():
        key = SigningKey.objects.select_for_update().select_related("issuer").filter(fingerprint=fingerprint).first()
        if key is None:
            raise errors.NotFound(f"fingerprint: no signing key {fingerprint!r}", field="fingerprint")
        if key.revoked_at is not None:
            return key
        before = _key_snapshot(key)
        key.revoked_at = clock.now()
        key.save(update_fields=["revoked_at"])
        audit_append(
            actor=actor.identity,
            action="signing_key.revoke",
            object_type="signing_key",
            object_id=f"key:{fingerprint}",
            before=before,
            after={**_key_snapshot(key), "reason": reason},
        )
    return key


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


# The outbox event of each contract status change (stream NUMBERING): billing and the portal
# learn that a contract's numbers can no longer be taken, or when they will be recalled.
CONTRACT_EVENTS = {
    "suspend": "numbering.contract.suspended.v1",
    "terminate": "numbering.contract.terminated.v1",
}


def _check_ends_on(ends_on: date | None) -> None:
    if ends_on is not None and ends_on < clock.today():
        raise errors.ValidationError(
            f"ends_on: may not lie in the past ({ends_on.isoformat()} is before today, {clock.today().isoformat()})",
            field="ends_on",
        )


def _change_status(
    *,
    action: str,
    contract_id: int,
    actor: Actor,
    reason: str,
    idempotency_key: str | None,
    ends_on: date | None = None,
) -> dict[str, Any]:
    authz.require_platform(actor, f"contract_{action}")
    sources, target = CONTRACT_TRANSITIONS[action]
    _check_ends_on(ends_on)

    def change() -> dict[str, Any]:
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
        today = clock.today()
        if action == "terminate":
            # The end date: the one asked for (its held numbers are recalled then, tenants
            # warned 30 and 7 days before), else today, never later than an end already past.
            if ends_on is not None:
                contract.ends_on = ends_on
            elif contract.ends_on is None or contract.ends_on > today:
                contract.ends_on = today
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
        # Suspend and terminate have events of their own (ADR 1611); any other status change
        # is the reference-data update (ADR 1620). One payload shape for all of them.
        verb = refdata.DEACTIVATED if target == Contract.Status.TERMINATED else refdata.UPDATED
        outbox_enqueue(
            event_type=CONTRACT_EVENTS.get(action) or refdata.event_type("contract", verb),
            aggregate_id=f"contract:{contract.reference}",
            data=json.loads(
                idempotency.canonical(
                    {
                        "object_type": "contract",
                        "object_id": contract.reference,
                        "actor": actor.identity,
                        "changed": sorted(k for k in after if before.get(k) != after[k]),
                        "before": before,
                        "after": {**after, "reason": reason},
                    }
                )
            ),
        )
        return json.loads(idempotency.canonical({"contract": after, "reason": reason}))

    request = {
        "action": f"contract_{action}",
        "contract_id": contract_id,
        "reason": reason,
        **({"ends_on": ends_on.isoformat()} if ends_on else {}),
    }
    with transaction.atomic():
        return idempotency.run(scope=actor.identity, key=idempotency_key, request=request, produce=change).response


def contract_suspend(
    *, contract_id: int, actor: Actor, reason: str = "", idempotency_key: str | None = None
) -> dict[str, Any]:
    return _change_status(
        action="suspend", contract_id=contract_id, actor=actor, reason=reason, idempotency_key=idempotency_key
    )


def contract_terminate(
    *,
    contract_id: int,
    actor: Actor,
    reason: str = "",
    ends_on: date | None = None,
    idempotency_key: str | None = None,
    wind_down_batches: int | None = None,
) -> dict[str, Any]:
    """Terminate the contract with its end date (`ends_on`, today when absent; never in the
    past). Committed first (audited, `numbering.contract.terminated.v1`); then its AVAILABLE
    and QUARANTINED numbers are retired at once through the lifecycle (and, when the end date
    is today, its held numbers recalled) — up to `wind_down_batches` batches here
    (CONTRACT_WIND_DOWN_INLINE_BATCHES), the rest by the hourly `contracts_enforce` job."""
    from contracts.wind_down import contract_wind_down

    response = _change_status(
        action="terminate",
        contract_id=contract_id,
        actor=actor,
        reason=reason,
        ends_on=ends_on,
        idempotency_key=idempotency_key,
    )
    batches = settings.CONTRACT_WIND_DOWN_INLINE_BATCHES if wind_down_batches is None else wind_down_batches
    if batches > 0:
        result = contract_wind_down(contract_id=contract_id, actor=actor, max_batches=batches)
        logger.info("contract %s terminated: %s", contract_id, result.summary())
    return response


# --- inventory imports: run now, or in the worker --------------------------------------------

# The Celery task that runs an import (contracts.tasks.run_import_task), named rather than
# imported: services sit below the task adapters.
RUN_IMPORT_TASK = "contracts.run_import"


def import_dispatch(
    import_id: int, *, actor: Actor, mode: str | None = None, dry_run: bool = False
) -> ImportOutcome | None:
    """Run an import (a dry run for the preview, or the commit in `mode`) now, or queue it
    to the Celery worker when INVENTORY_IMPORT_ASYNC is set — the one place that decides,
    for the REST upload and the admin wizard alike. Returns the run's outcome when it ran
    here, None when it was queued (the record is then PENDING until the worker takes it).

    Inside a transaction the message is published once it commits, so the worker finds
    the upload. When the broker cannot take it, the run happens here instead: an upload
    is never left PENDING with nothing to run it. An unknown mode is a ValidationError
    before anything changes."""
    if mode is not None:
        import_set_mode(import_id=import_id, mode=mode)
    if not settings.INVENTORY_IMPORT_ASYNC:
        return run_import(import_id, mode=mode, dry_run=dry_run)
    # What the progress page shows until the worker starts (a committed import stays so).
    InventoryImport.objects.filter(pk=import_id).exclude(status=InventoryImport.Status.COMMITTED).update(
        status=InventoryImport.Status.PENDING, processed_rows=0
    )
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _queue_or_run(import_id, actor=actor, mode=mode, dry_run=dry_run))
        return None
    return _queue_or_run(import_id, actor=actor, mode=mode, dry_run=dry_run)


def _queue_or_run(import_id: int, *, actor: Actor, mode: str | None, dry_run: bool) -> ImportOutcome | None:
    args = (import_id, mode, dry_run)
    try:
        # The registered task when this process has loaded it (so task_always_eager and its
        # options apply); otherwise by name — the web process need not import the tasks.
        task = current_app.tasks.get(RUN_IMPORT_TASK)
        if task is not None:
            task.delay(*args)
        else:
            current_app.send_task(RUN_IMPORT_TASK, args=args)
    except Exception as exc:  # noqa: BLE001 - any broker failure: fall back to running it here
        logger.warning("import %s: could not queue it to Celery (%s); running it in the request", import_id, exc)
        return run_import(import_id, mode=mode, dry_run=dry_run)
    logger.info("import %s queued to the worker for %s (dry_run=%s)", import_id, actor.identity, dry_run)
    return None


# --- reference data written in the admin (issue 13 item 3, ADR 1351) ---------------------------
# The admin's change forms call these (never Model.save): each change is one audit event with
# before/after, and the rules REST enforces hold here too.

# Status changes a contract's change form may make (the REST actions are stricter still:
# suspend and terminate only). TERMINATED is final.
CONTRACT_FORM_STATUS_CHANGES = {
    (Contract.Status.DRAFT, Contract.Status.ACTIVE),
    (Contract.Status.SUSPENDED, Contract.Status.ACTIVE),
    *((source, target) for _action, (sources, target) in CONTRACT_TRANSITIONS.items() for source in sources),
}


def contract_status_change_problem(before: str | None, after: str) -> str | None:
    """Why a contract may not go from `before` to `after` (None when it may)."""
    if before is None:
        return (
            None
            if after in {Contract.Status.DRAFT, Contract.Status.ACTIVE}
            else (f"status: a new contract starts DRAFT or ACTIVE, not {after}")
        )
    if before == after or (before, after) in CONTRACT_FORM_STATUS_CHANGES:
        return None
    return f"status: a contract cannot go from {before} to {after}"


# A status a change form sets needs the REST key of the same action.
CONTRACT_STATUS_KEYS = {
    Contract.Status.SUSPENDED: "admin.contracts.suspend",
    Contract.Status.TERMINATED: "admin.contracts.terminate",
}


def contract_status_role_problem(before: str | None, after: str, roles: frozenset[str]) -> str | None:
    key = CONTRACT_STATUS_KEYS.get(after)  # type: ignore[call-overload]
    if before != after and key and not authz.allowed(key, roles):
        return f"status: setting {after} needs one of the roles {', '.join(sorted(authz.MATRIX[key]))}"
    return None


def contract_save(contract: Contract, *, actor: Actor, save: Any) -> None:
    """Create or change a contract (the admin form): TERMINATED is final, SUSPENDED and
    TERMINATED need the roles of the REST suspend/terminate actions; audited."""
    authz.require_platform(actor, "contract_save")

    def check(before: dict[str, Any] | None, row: Contract) -> None:
        old = before["status"] if before else None
        problem = contract_status_change_problem(old, row.status) or contract_status_role_problem(
            old, row.status, actor.roles
        )
        if problem:
            raise errors.InvalidTransition(problem, field="status")
        formats.check_mobile_prefixes(row.agreed_prefixes, field="agreed_prefixes")

    audited_save(
        contract, actor=actor.identity, object_type="contract", object_id=lambda c: c.reference, save=save, check=check
    )


def issuer_save(issuer: Issuer, *, actor: Actor, save: Any) -> None:
    authz.require_platform(actor, "issuer_save")

    def check(_before: dict[str, Any] | None, row: Issuer) -> None:
        formats.check_mobile_prefixes(row.msisdn_prefixes, field="msisdn_prefixes")

    audited_save(issuer, actor=actor.identity, object_type="issuer", object_id=lambda i: i.code, save=save, check=check)


def block_save(block: NumberBlock, *, actor: Actor, save: Any) -> None:
    authz.require_platform(actor, "block_save")
    audited_save(
        block, actor=actor.identity, object_type="number_block", object_id=lambda b: f"block:{b.pk}", save=save
    )


# --- reference data over REST (issue 16, ADR 1620): the same audited saves ---------------------
# The fields a request may set; the rest (ids, timestamps, deactivated_at) are the service's.
ISSUER_FIELDS = ("code", "name", "kind", "msisdn_prefixes")
CONTRACT_FIELDS = ("reference", "issuer", "kind", "status", "starts_on", "ends_on", "agreed_prefixes")
BLOCK_FIELDS = ("name", "issuer", "contract", "kind", "range_start", "range_end")


def issuer_write(*, data: dict[str, Any], actor: Actor, issuer: Issuer | None = None) -> Issuer:
    if "msisdn_prefixes" in data:
        data = {
            **data,
            "msisdn_prefixes": formats.check_mobile_prefixes(data["msisdn_prefixes"], field="msisdn_prefixes"),
        }
    return refdata.write(issuer or Issuer(), data, allowed=ISSUER_FIELDS, actor=actor, save_service=issuer_save)


def issuer_deactivate(*, issuer: Issuer, actor: Actor) -> Issuer:
    """A deactivated issuer's imports are refused; its numbers stay as they are."""
    return refdata.deactivate(issuer, actor=actor, save_service=issuer_save)


def contract_write(*, data: dict[str, Any], actor: Actor, contract: Contract | None = None) -> Contract:
    """Create or change a contract; its status follows contract_save's rules (deactivating a
    contract is the terminate action)."""
    if "agreed_prefixes" in data:
        data = {
            **data,
            "agreed_prefixes": formats.check_mobile_prefixes(data["agreed_prefixes"], field="agreed_prefixes"),
        }
    issuer = data.get("issuer")
    if isinstance(issuer, Issuer) and issuer.deactivated_at is not None and contract is None:
        raise errors.ValidationError(f"issuer: {issuer.code} is deactivated; no new contracts", field="issuer")
    return refdata.write(contract or Contract(), data, allowed=CONTRACT_FIELDS, actor=actor, save_service=contract_save)


def block_write(*, data: dict[str, Any], actor: Actor, block: NumberBlock | None = None) -> NumberBlock:
    issuer, contract = data.get("issuer"), data.get("contract")
    if block is None and isinstance(issuer, Issuer) and issuer.deactivated_at is not None:
        raise errors.ValidationError(f"issuer: {issuer.code} is deactivated; no new blocks", field="issuer")
    target_issuer = issuer or (block.issuer if block else None)
    if isinstance(contract, Contract) and target_issuer is not None and contract.issuer_id != target_issuer.pk:
        raise errors.ValidationError(
            f"contract: {contract.reference} belongs to another issuer than the block", field="contract"
        )
    return refdata.write(block or NumberBlock(), data, allowed=BLOCK_FIELDS, actor=actor, save_service=block_save)


def block_deactivate(*, block: NumberBlock, actor: Actor) -> NumberBlock:
    return refdata.deactivate(block, actor=actor, save_service=block_save)
