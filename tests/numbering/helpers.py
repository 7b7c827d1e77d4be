"""Put numbers into a given state through the real services (plus clock tricks for due guards)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from config.provider_states import move_lease_end
from core.actors import Actor
from core.models import OutboxEvent
from core.rls import rls_scope
from numbering import services
from numbering.lifecycle import Action, State
from numbering.models import Number
from tests.factories import NumberFactory

OPS = Actor.user("ops.olga", roles=frozenset({"commerce.ops"}))
PAST = timedelta(seconds=5)


def number_in(state: State, holder: Any, *, due: bool = False, **factory_kw: Any) -> Number:
    """A number in `state` (held by `holder` when RESERVED/ASSIGNED). With due=True its
    reservation, lease or quarantine deadline is already past."""
    n = NumberFactory(**factory_kw)
    if state is State.AVAILABLE:
        return n
    if state is State.RETIRED:
        services.number_retire(number=n.number, actor=OPS)
        return _fresh(n)
    services.number_reserve(number=n.number, tenant_id=holder.id, actor=OPS)
    if state is State.RESERVED:
        if due:
            _platform(lambda: Number.objects.filter(id=n.id).update(reserved_until=timezone.now() - PAST))
        return _fresh(n)
    services.number_assign(number=n.number, tenant_id=holder.id, actor=OPS)
    if state is State.ASSIGNED:
        if due:
            move_lease_end(n.number, timezone.now() - PAST)
        return _fresh(n)
    services.number_release(number=n.number, actor=OPS)
    if due:
        _platform(lambda: Number.objects.filter(id=n.id).update(quarantine_until=timezone.now() - PAST))
    return _fresh(n)


def _platform(fn: Any) -> Any:
    with transaction.atomic(), rls_scope(platform=True):
        return fn()


def _fresh(n: Number) -> Number:
    return _platform(lambda: Number.objects.get(id=n.id))


def call(action: Action, number: str, tenant: Any, actor: Actor = OPS, **kw: Any) -> services.MutationResult:
    fn = services.SERVICES[action]
    if action in {Action.RESERVE, Action.EXTEND_RESERVATION, Action.ASSIGN}:
        kw.setdefault("tenant_id", tenant.id)
    if action in {Action.EXPIRE_RESERVATION, Action.EXPIRE_LEASE, Action.END_QUARANTINE}:
        return fn(number=number, **kw)
    return fn(number=number, actor=actor, **kw)


def counts(number: Number) -> tuple[int, int]:
    return _platform(
        lambda: (
            AuditEvent.objects.filter(object_id=number.number).count(),
            OutboxEvent.objects.filter(aggregate_id=number.number).count(),
        )
    )
