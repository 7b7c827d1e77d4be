"""The contract admin's terminate preview (issue 16): counts per state and per tenant before
anything changes; only numbering.admin (admin.contracts.terminate) may see and confirm it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from contracts.models import Contract
from core import authz as roles
from numbering import services
from numbering.lifecycle import State
from numbering.models import Number
from tests.admin.conftest import staff_user
from tests.contracts.test_contract_wind_down import OPS, contract_with_numbers

pytestmark = pytest.mark.django_db


def _count(page: str, state: str) -> int:
    match = re.search(rf'data-state="{state}">(\d+)<', page)
    assert match, state
    return int(match.group(1))


def test_terminate_shows_counts_per_state_and_tenant_before_confirming(
    client: Any, general_pool: Any, alice: Any, bob: Any
) -> None:
    contract, (free1, free2, a_leased, a_reserved, b_leased) = contract_with_numbers(general_pool, 5)
    for number, tenant in ((a_leased, alice), (b_leased, bob)):
        services.number_reserve(number=number.number, tenant_id=tenant.id, actor=OPS)
        services.number_assign(number=number.number, tenant_id=tenant.id, actor=OPS)
    services.number_reserve(number=a_reserved.number, tenant_id=alice.id, actor=OPS)
    client.force_login(staff_user("adam", roles.NUMBERING_ADMIN))

    changelist = reverse("admin:contracts_contract_changelist")
    response = client.post(changelist, {"action": "terminate", "_selected_action": [contract.pk]}, follow=True)
    page = response.content.decode()

    assert response.redirect_chain[-1][0] == reverse("admin:contracts_contract_terminate", args=[contract.pk])
    assert (_count(page, "AVAILABLE"), _count(page, "RESERVED"), _count(page, "ASSIGNED")) == (2, 1, 2)
    assert re.search(rf'data-tenant="{alice.id}"><td>Alice</td><td>1</td><td>1</td>', page)
    assert re.search(rf'data-tenant="{bob.id}"><td>Bob</td><td>0</td><td>1</td>', page)
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.ACTIVE  # the preview changed nothing

    ends_on = timezone.localdate() + timedelta(days=20)
    url = reverse("admin:contracts_contract_terminate", args=[contract.pk])
    client.post(url, {"ends_on": ends_on.isoformat(), "reason": "MNO ends the MOU"})

    contract.refresh_from_db()
    assert (contract.status, contract.ends_on) == (Contract.Status.TERMINATED, ends_on)
    states = dict(Number.objects.filter(block__contract=contract).values_list("number", "state"))
    assert states[free1.number] == states[free2.number] == State.RETIRED
    assert states[a_leased.number] == State.ASSIGNED  # recalled on the end date, not now
    audit = AuditEvent.objects.get(action="contract_terminate", object_id=contract.reference)
    assert audit.actor == "user:adam" and audit.after["reason"] == "MNO ends the MOU"


def test_an_end_date_in_the_past_is_refused_on_the_preview_page(client: Any, general_pool: Any) -> None:
    contract, _ = contract_with_numbers(general_pool)
    client.force_login(staff_user("adam", roles.NUMBERING_ADMIN))
    url = reverse("admin:contracts_contract_terminate", args=[contract.pk])
    page = client.post(url, {"ends_on": "2020-01-01", "reason": "x"}).content.decode()
    assert "may not lie in the past" in page
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.ACTIVE


@pytest.mark.parametrize("role", [roles.COMMERCE_OPS, roles.AUDITOR, roles.COMPLIANCE_OFFICER])
def test_only_the_terminate_role_sees_or_confirms_the_preview(client: Any, general_pool: Any, role: str) -> None:
    contract, _ = contract_with_numbers(general_pool)
    client.force_login(staff_user("someone", role))
    url = reverse("admin:contracts_contract_terminate", args=[contract.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"ends_on": timezone.localdate().isoformat(), "reason": "x"}).status_code == 403
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.ACTIVE
