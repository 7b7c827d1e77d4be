"""Admin refusals and the audit verify paths."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from audit.models import ChainHead
from contracts.models import InventoryImport
from core import authz as roles
from core.actors import Actor
from core.errors import NotFound, ValidationError
from numbering import services
from numbering.lifecycle import State
from tests.admin.conftest import staff_user
from tests.contracts.conftest import HEADER, msisdn_rows, sign_csv
from tests.factories import NumberFactory
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db


def test_auditor_can_look_but_not_upload_commit_or_act(client, roshan, system):
    client.force_login(staff_user("aud", roles.AUDITOR))
    signed = sign_csv(HEADER + msisdn_rows(2))
    from contracts.imports import import_file

    outcome = import_file(
        issuer_code="ROSHAN", csv_file=signed.csv, signature=signed.signature, actor=system, dry_run=True
    )
    assert client.get(reverse("admin:contracts_inventoryimport_wizard")).status_code == 403
    assert client.post(reverse("admin:contracts_inventoryimport_commit", args=[outcome.import_id])).status_code == 403
    page = client.get(reverse("admin:contracts_inventoryimport_step", args=[outcome.import_id])).content.decode()
    assert "Signature verified" in page and 'id="commit-submit"' not in page
    assert client.get(reverse("admin:contracts_inventoryimport_status", args=[outcome.import_id])).status_code == 200
    assert client.get(reverse("admin:numbering_number_overview")).status_code == 200


def test_act_view_refuses_get_and_unknown_actions(ops_client, roshan):
    number = NumberFactory(issuer=roshan)
    assert ops_client.get(reverse("admin:numbering_number_act", args=[number.pk, "recall"])).status_code == 403
    assert ops_client.post(reverse("admin:numbering_number_act", args=[number.pk, "delete"])).status_code == 403


def test_bulk_action_without_the_role_is_refused_with_a_message(client, alice):
    number = number_in(State.ASSIGNED, alice)
    client.force_login(staff_user("comp", roles.COMPLIANCE_OFFICER))
    page = client.post(
        reverse("admin:numbering_number_changelist"),
        {"action": "action_retire", "_selected_action": [number.pk]},
        follow=True,
    ).content.decode()
    assert "needs one of the roles" in page


def test_many_refusals_are_summarised(ops_client, roshan):
    numbers = NumberFactory.create_batch(22, issuer=roshan)
    page = ops_client.post(
        reverse("admin:numbering_number_changelist"),
        {"action": "action_renew", "_selected_action": [n.pk for n in numbers]},
        follow=True,
    ).content.decode()
    assert "and 2 more refusals" in page


def test_commit_with_an_unknown_mode_is_refused(ops_client, roshan):
    signed = sign_csv(HEADER + msisdn_rows(2))
    ops_client.post(
        reverse("admin:contracts_inventoryimport_wizard"),
        {
            "issuer": "ROSHAN",
            "csv_file": SimpleUploadedFile("r.csv", signed.csv),
            "signature": SimpleUploadedFile("r.sig", signed.signature),
        },
    )
    imp = InventoryImport.objects.get()
    page = ops_client.post(
        reverse("admin:contracts_inventoryimport_commit", args=[imp.pk]), {"mode": "yolo"}, follow=True
    ).content.decode()
    assert "Mode: &#x27;yolo&#x27; is not one of" in page  # the admin capitalises messages
    assert InventoryImport.objects.get().status == "VERIFIED"


def test_upload_refusal_is_shown_on_the_form(ops_client, roshan, settings):
    settings.INVENTORY_IMPORT_MAX_BYTES = 1024
    page = ops_client.post(
        reverse("admin:contracts_inventoryimport_wizard"),
        {
            "issuer": "ROSHAN",
            "csv_file": SimpleUploadedFile("r.csv", b"x" * 4000),
            "signature": SimpleUploadedFile("r.sig", b"y"),
        },
    ).content.decode()
    assert "larger than 1024 bytes" in page and not InventoryImport.objects.exists()


def test_verify_chain_command_and_admin_report_a_broken_chain(ops_client, alice):
    number_in(State.ASSIGNED, alice)
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    assert "audit chain OK" in out.getvalue()
    ChainHead.objects.update(seq=999)
    with pytest.raises(CommandError, match="audit chain broken"):
        call_command("verify_audit_chain", stdout=StringIO(), stderr=StringIO())
    page = ops_client.post(reverse("admin:audit_auditevent_verify"), follow=True).content.decode()
    assert "Audit chain BROKEN" in page
    assert ops_client.get(reverse("admin:audit_auditevent_verify")).status_code == 403


def test_quarantine_policy_update_refuses_bad_input():
    actor = Actor.user("adam")
    with pytest.raises(ValidationError, match="days"):
        services.quarantine_policy_update(case="MSISDN", days=-1, approved_by="L", actor=actor)
    with pytest.raises(ValidationError, match="approved_by"):
        services.quarantine_policy_update(case="MSISDN", days=10, approved_by=" ", actor=actor)
    with pytest.raises(NotFound):
        services.quarantine_policy_update(case="NOPE", days=10, approved_by="L", actor=actor)


def test_big_table_filters_use_fixed_values_not_distinct_scans(ops_client, alice):
    number = number_in(State.ASSIGNED, alice)
    url = reverse("admin:numbering_number_changelist")
    assert number.number not in ops_client.get(url, {"vanity_tier": "GOLD"}).content.decode()
    assert number.number in ops_client.get(url, {"state": "ASSIGNED"}).content.decode()
    assert ops_client.get(reverse("admin:audit_auditevent_changelist"), {"action": "assign"}).status_code == 200
    assert ops_client.get(reverse("admin:audit_auditevent_changelist"), {"object_type": "number"}).status_code == 200
    outbox = reverse("admin:core_outboxevent_changelist")
    assert (
        "numbering.number.assigned.v1"
        in ops_client.get(outbox, {"event_type": "numbering.number.assigned.v1"}).content.decode()
    )
