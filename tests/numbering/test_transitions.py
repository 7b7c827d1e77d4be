"""Every transition of the lifecycle table, valid and invalid, read from the table itself."""

from __future__ import annotations

import pytest

from core import errors
from core.models import OutboxEvent
from numbering.lifecycle import TRANSITIONS, Action, State, Transition, invalid_pairs
from numbering.models import Lease, Number, Reservation
from tests.numbering.helpers import call, counts, number_in

pytestmark = pytest.mark.django_db


def _id(t: Transition) -> str:
    return f"{t.action.value}:{t.source.value}->{t.target.value}"


@pytest.mark.parametrize("transition", TRANSITIONS, ids=_id)
def test_every_valid_transition_succeeds_with_its_side_effects(transition: Transition, alice) -> None:
    due = transition.action in {Action.EXPIRE_RESERVATION, Action.EXPIRE_LEASE, Action.END_QUARANTINE}
    number = number_in(transition.source, alice, due=due)
    audit_before, outbox_before = counts(number)

    result = call(transition.action, number.number, alice)

    after = Number.objects.get(id=number.id)
    assert after.state == transition.target.value
    assert after.version == number.version + 1
    assert result.number["state"] == transition.target.value
    assert result.number["version"] == after.version
    assert counts(number) == (audit_before + 1, outbox_before + 1)
    event = OutboxEvent.objects.filter(aggregate_id=number.number).latest("id")
    assert event.event_type == transition.event
    assert event.envelope["sequence"] == after.version
    assert event.envelope["data"]["from_state"] == transition.source.value
    if transition.target in (State.RESERVED, State.ASSIGNED):
        assert after.tenant_id == alice.id
    else:
        assert after.tenant_id is None
    if transition.target is State.QUARANTINED:
        assert after.quarantine_until is not None
    if transition.target is State.ASSIGNED:
        assert Lease.objects.filter(number=after, status="ACTIVE").count() == 1
    else:
        assert not Lease.objects.filter(number=after, status="ACTIVE").exists()
    active_reservations = Reservation.objects.filter(number=after, status="ACTIVE").count()
    assert active_reservations == (1 if transition.target is State.RESERVED else 0)


@pytest.mark.parametrize(("state", "action"), invalid_pairs(), ids=lambda v: getattr(v, "value", str(v)))
def test_every_invalid_pair_is_refused_and_changes_nothing(state: State, action: Action, alice) -> None:
    number = number_in(state, alice, due=True)
    before = counts(number)

    with pytest.raises(errors.InvalidTransition) as refused:
        call(action, number.number, alice)

    assert refused.value.code == "INVALID_TRANSITION"
    after = Number.objects.get(id=number.id)
    assert (after.state, after.version) == (number.state, number.version)
    assert counts(number) == before


def test_the_table_covers_every_action_and_no_pair_twice() -> None:
    assert {t.action for t in TRANSITIONS} == set(Action)
    pairs = [(t.action, t.source) for t in TRANSITIONS]
    assert len(pairs) == len(set(pairs))
    assert len(invalid_pairs()) == len(State) * len(Action) - len(TRANSITIONS)
