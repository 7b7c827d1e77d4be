"""Reference data (issuers, contracts, blocks, tenants, pools, tenant pools, quarantine
policies): the rules every write of it shares, in one place (issue 16, ADR 1620).

- the event each change publishes: ``numbering.<object_type>.<created|updated|deactivated>.v1``
  (stream NUMBERING, subjects ``numbering.>``); REFDATA_EVENT_TYPES lists every one;
- turning a request's fields into a validated row: Django's field and model validation,
  re-raised as the domain ValidationError naming the field and the rule;
- "deactivated, never deleted": the ``deactivated_at`` column and its checks.

The audited write itself is audit.services.audited_save (it appends the audit event and
enqueues this event in the same transaction); the owning apps' services call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from core import clock, errors

# object_type (as audited) -> the entity name in event types
REFDATA_OBJECT_TYPES = (
    "issuer",
    "contract",
    "number_block",
    "tenant",
    "inventory_pool",
    "tenant_pool",
    "quarantine_policy",
    "vanity_tier",  # a tier's name and whether it is sold; its price moves through four eyes (ADR 1650)
)
# A tenant SUSPENDED/DELETED and a contract TERMINATED are deactivated by their status.
ENDING_STATUSES = frozenset({"SUSPENDED", "DELETED", "TERMINATED"})
CREATED, UPDATED, DEACTIVATED = "created", "updated", "deactivated"
VERBS = (CREATED, UPDATED, DEACTIVATED)


def event_type(object_type: str, verb: str) -> str:
    if object_type not in REFDATA_OBJECT_TYPES or verb not in VERBS:
        raise ValueError(f"no reference-data event for {object_type!r} {verb!r}")
    return f"numbering.{object_type}.{verb}.v1"


REFDATA_EVENT_TYPES = tuple(event_type(t, v) for t in REFDATA_OBJECT_TYPES for v in VERBS)


def verb_of(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """created (no row before), deactivated (this change set deactivated_at, or a status
    that ends the row's use), else updated."""
    if before is None:
        return CREATED
    if after.get("deactivated_at") and not before.get("deactivated_at"):
        return DEACTIVATED
    if after.get("status") in ENDING_STATUSES and before.get("status") not in ENDING_STATUSES:
        return DEACTIVATED
    return UPDATED


def assign(instance: Any, data: Mapping[str, Any], *, allowed: Iterable[str]) -> None:
    """Set the request's fields on the row; a field outside `allowed` is refused by name."""
    allowed = set(allowed)
    for name, value in data.items():
        if name not in allowed:
            raise errors.ValidationError(
                f"{name}: cannot be set here (settable: {', '.join(sorted(allowed))})", field=name
            )
        setattr(instance, name, value)


def clean(instance: Any, *, exclude: Iterable[str] = ()) -> None:
    """Django's field, choice, uniqueness and model validation; the first problem becomes a
    domain ValidationError naming the field and the rule (a 400, never a 500 from the DB)."""
    try:
        instance.full_clean(exclude=list(exclude))
    except DjangoValidationError as exc:
        problems = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        field, messages = sorted(problems.items())[0]
        name = _constraint_field(instance, " ".join(messages)) if field == "__all__" else field
        raise errors.ValidationError(f"{name}: {' '.join(messages)}", field=name) from None


def write(
    instance: Any,
    data: Mapping[str, Any],
    *,
    allowed: Iterable[str],
    actor: Any,
    save_service: Callable[..., Any],
    relations: Iterable[str] = (),
) -> Any:
    """Create (no pk) or change a row from a request's fields through its app's audited save
    service (`service(instance, actor=, save=)`). Only the given fields are written, so a
    concurrent change of another field is not overwritten; many-to-many `relations` are set
    after the row. Returns the row as stored."""
    data = dict(data)
    related = {name: data.pop(name) for name in list(relations) if name in data}
    creating = instance._state.adding
    assign(instance, data, allowed=allowed)
    clean(instance, exclude=list(relations))

    def save() -> None:
        if creating:
            instance.save()
        elif data:
            instance.save(update_fields=[*_columns(instance, data), *_auto_now(instance)])
        for name, values in related.items():
            getattr(instance, name).set(values)

    save_service(instance, actor=actor, save=save)
    instance.refresh_from_db()
    return instance


def deactivate(instance: Any, *, actor: Any, save_service: Callable[..., Any]) -> Any:
    """Set `deactivated_at` (audited, published). A row already deactivated stays as it is:
    the row is locked before deciding, so two concurrent deactivations make one event and
    both answer the deactivated row."""
    with transaction.atomic():
        row = type(instance)._default_manager.select_for_update().get(pk=instance.pk)
        if row.deactivated_at is None:
            row.deactivated_at = clock.now()
            save_service(row, actor=actor, save=lambda: row.save(update_fields=["deactivated_at"]))
            row.refresh_from_db()
    return row


def refuse_change_of_deactivated(before: Mapping[str, Any] | None, what: str) -> None:
    """The one check that a deactivated row is kept as it was (audit.services.audited_save)."""
    if before is not None and before.get("deactivated_at"):
        raise errors.InvalidTransition(
            f"deactivated_at: {what} was deactivated at {before['deactivated_at']}; it is kept as it was",
            field="deactivated_at",
        )


def _columns(instance: Any, data: Mapping[str, Any]) -> list[str]:
    return [instance._meta.get_field(name).name for name in data]


def _auto_now(instance: Any) -> list[str]:
    return [f.name for f in instance._meta.concrete_fields if getattr(f, "auto_now", False)]


def _constraint_field(instance: Any, message: str) -> str:
    """The first field a violated model constraint (named in Django's message) is about."""
    for constraint in instance._meta.constraints:
        if constraint.name not in message:
            continue
        fields = list(getattr(constraint, "fields", ()) or ())
        condition = getattr(constraint, "condition", None)
        if not fields and condition is not None:
            fields = [child[0].split("__")[0] for child in condition.children if isinstance(child, tuple)]
        if fields:
            return str(fields[-1])
    return "non_field_errors"
