"""Issue 16 part 7: a number's admin page offers only what the lifecycle allows.

Each button shows only where lifecycle.TRANSITIONS has a row for the action from the number's
state and the staff user's role may take it (core.authz); a disallowed action posted anyway is
refused by the service and changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from core import authz as roles
from numbering import lifecycle
from numbering.admin import ACTION_LABELS
from numbering.lifecycle import State
from numbering.models import Number
from tests.admin.conftest import staff_user
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db

# DESIGN §2.1 read by hand, so a wrong table or a wrong helper fails here.
ALLOWED_FROM = {
    State.AVAILABLE: {"retire"},
    State.RESERVED: {"extend_reservation", "recall"},
    State.ASSIGNED: {"renew", "recall"},
    State.QUARANTINED: {"retire"},
    State.RETIRED: {"reinstate"},
}
ROLE_MAY = {
    roles.NUMBERING_ADMIN: set(ACTION_LABELS),
    roles.COMMERCE_OPS: set(ACTION_LABELS),
    roles.COMPLIANCE_OFFICER: {"recall"},
    roles.AUDITOR: set(),
}


def _offered(client: Any, number: Number) -> set[str]:
    page = client.get(reverse("admin:numbering_number_change", args=[number.pk]))
    assert page.status_code == 200
    return set(re.findall(r'id="action-([a-z_]+)"', page.content.decode()))


def test_the_table_helper_agrees_with_the_spec() -> None:
    for state, expected in ALLOWED_FROM.items():
        assert {a.value for a in lifecycle.actions_from(state)} & set(ACTION_LABELS) == expected


@pytest.mark.parametrize("action", list(ACTION_LABELS))
@pytest.mark.parametrize("state", list(State))
def test_each_button_shows_exactly_where_the_table_allows_it(
    client: Any, alice: Any, state: State, action: str
) -> None:
    client.force_login(staff_user("nadia", roles.NUMBERING_ADMIN))
    number = number_in(state, alice)
    assert (action in _offered(client, number)) == (action in ALLOWED_FROM[state])


@pytest.mark.parametrize("role", list(ROLE_MAY))
@pytest.mark.parametrize("state", list(State))
def test_buttons_are_the_table_intersected_with_the_role(client: Any, alice: Any, state: State, role: str) -> None:
    client.force_login(staff_user("staffer", role))
    number = number_in(state, alice)
    assert _offered(client, number) == ALLOWED_FROM[state] & ROLE_MAY[role]


def test_a_quarantined_number_offers_no_recall_renew_or_extend(client: Any, alice: Any) -> None:
    """The issue's example."""
    client.force_login(staff_user("olga", roles.COMMERCE_OPS))
    assert _offered(client, number_in(State.QUARANTINED, alice)) == {"retire"}


@pytest.mark.parametrize(
    ("state", "action"),
    [(state, action) for state in State for action in ACTION_LABELS if action not in ALLOWED_FROM[state]],
)
def test_a_hidden_action_posted_anyway_is_refused_and_changes_nothing(
    client: Any, alice: Any, state: State, action: str
) -> None:
    client.force_login(staff_user("nadia", roles.NUMBERING_ADMIN))
    number = number_in(state, alice)
    audit_before = AuditEvent.objects.filter(object_id=number.number).count()
    response = client.post(
        reverse("admin:numbering_number_act", args=[number.pk, action]), {"reason": "OPS_RECALL"}, follow=True
    )
    page = response.content.decode()
    assert f"{ACTION_LABELS[action]} refused" in page and "INVALID_TRANSITION" in page
    assert "number(s) done" not in page
    after = Number.objects.get(pk=number.pk)
    assert (after.state, after.version, after.reserved_until) == (number.state, number.version, number.reserved_until)
    assert AuditEvent.objects.filter(object_id=number.number).count() == audit_before
