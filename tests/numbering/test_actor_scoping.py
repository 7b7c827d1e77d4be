"""Issue 13 item 7: idempotency keys and audit actors are scoped by tenant and subject.

Before, a tenant actor's scope was `tenant:<sub>`: one subject acting for two tenants (an
SSO user, a support login) collided on its idempotency keys and its audit events did not say
for which tenant it acted.
"""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from core.actors import Actor
from numbering import services
from numbering.lifecycle import State
from numbering.models import Number
from tests.factories import NumberFactory

pytestmark = pytest.mark.django_db


def test_one_subject_acting_for_two_tenants_never_shares_an_idempotency_key(alice: Any, bob: Any) -> None:
    for_alice = Actor.tenant("sam@support", alice.id, roles=frozenset({"tenant.admin"}))
    for_bob = Actor.tenant("sam@support", bob.id, roles=frozenset({"tenant.admin"}))
    first, second = NumberFactory(), NumberFactory()
    a = services.number_reserve(number=first.number, tenant_id=alice.id, actor=for_alice, idempotency_key="k-1")
    # Same subject, same key, other tenant: its own request (was IDEMPOTENCY_KEY_REUSED).
    b = services.number_reserve(number=second.number, tenant_id=bob.id, actor=for_bob, idempotency_key="k-1")
    assert not a.replayed and not b.replayed
    assert Number.objects.get(id=first.id).tenant_id == alice.id
    assert Number.objects.get(id=second.id).tenant_id == bob.id
    # ...and each tenant's key still replays its own response.
    again = services.number_reserve(number=first.number, tenant_id=alice.id, actor=for_alice, idempotency_key="k-1")
    assert again.replayed and again.number == a.number
    assert Number.objects.get(id=first.id).state == State.RESERVED


def test_audit_actor_names_the_tenant_and_the_subject(alice: Any, bob: Any) -> None:
    n, m = NumberFactory(), NumberFactory()
    services.number_reserve(number=n.number, tenant_id=alice.id, actor=Actor.tenant("sam", alice.id))
    services.number_reserve(number=m.number, tenant_id=bob.id, actor=Actor.tenant("sam", bob.id))
    assert AuditEvent.objects.get(object_id=n.number).actor == f"tenant:{alice.id}:sam"
    assert AuditEvent.objects.get(object_id=m.number).actor == f"tenant:{bob.id}:sam"
