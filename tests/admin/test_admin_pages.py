"""The admin as commerce ops use it: search, number page, actions, overview, wizard."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from contracts import signing
from contracts.models import InventoryImport, SigningKey
from core import authz as roles
from numbering import selectors
from numbering.lifecycle import State
from numbering.models import Number, QuarantinePolicy
from tests.admin.conftest import staff_user
from tests.contracts.conftest import HEADER, msisdn_rows, private_key, sign_csv
from tests.factories import ContractFactory, NumberFactory
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("0791234567", {"+93791234567"}),
        ("079 123 4567", {"+93791234567"}),
        ("93791234567", {"+93791234567"}),
        ("+93791234567", {"+93791234567"}),
        ("4040", {"4040"}),
        ("0791", {"+93791234567", "+93791299999"}),
        ("+9379", {"+93791234567", "+93791299999"}),
        ("0093791", {"+93791234567", "+93791299999"}),
        ("937912", {"+93791234567", "+93791299999"}),
        ("40", {"4040"}),
        ("۰۷۹ ۱۲۳ ۴۵۶۷", {"+93791234567"}),  # Persian digits (issue 16)
        ("٠٠٩٣٧٩١٢٣٤٥٦٧", {"+93791234567"}),  # Arabic-Indic, 00-prefixed
        ("+937۹1234567", {"+93791234567"}),  # mixed: the same number, never a second one
        ("۰۷۹۱", {"+93791234567", "+93791299999"}),
        ("۴۰", {"4040"}),
        ("abc", set()),
        ("", {"+93791234567", "+93791299999", "+93721234567", "4040"}),
    ],
)
def test_staff_search_accepts_any_number_format(term, expected, roshan, atra):
    for value in ("+93791234567", "+93791299999", "+93721234567"):
        NumberFactory(number=value, issuer=roshan)
    NumberFactory(number="4040", kind=Number.Kind.SHORT_CODE, issuer=atra)
    assert set(selectors.number_search(Number.objects.all(), term).values_list("number", flat=True)) == expected


def test_changelist_finds_a_number_by_national_format(ops_client, roshan):
    NumberFactory(number="+93795550001", issuer=roshan)
    NumberFactory(number="+93795550002", issuer=roshan)
    url = reverse("admin:numbering_number_changelist")
    page = ops_client.get(url, {"q": "0795550001"}).content.decode()
    assert "+93795550001" in page and "+93795550002" not in page
    page = ops_client.get(url, {"q": "079555000"}).content.decode()
    assert "+93795550001" in page and "+93795550002" in page
    assert "+93795550001" not in ops_client.get(url, {"q": "zzz"}).content.decode()
    page = ops_client.get(url, {"q": "۰۷۹۵۵۵۰۰۰۱"}).content.decode()  # Persian digits (issue 16)
    assert "+93795550001" in page and "+93795550002" not in page
    assert "+93795550002" in ops_client.get(url).content.decode()


def test_number_page_shows_lease_holder_history_and_audit_trail(ops_client, alice):
    number = number_in(State.ASSIGNED, alice)
    page = ops_client.get(reverse("admin:numbering_number_change", args=[number.pk])).content.decode()
    assert 'id="number-lease"' in page and alice.name in page
    assert "audit-row" in page and "assign" in page
    assert 'id="action-recall"' in page and 'name="_save"' not in page


def test_recall_from_the_number_page_goes_through_the_service_as_the_staff_user(ops_client, alice):
    number = number_in(State.ASSIGNED, alice)
    response = ops_client.post(
        reverse("admin:numbering_number_act", args=[number.pk, "recall"]), {"reason": "OPS_RECALL"}, follow=True
    )
    assert "Recall: 1 number(s) done." in response.content.decode()
    number.refresh_from_db()
    assert number.state == "QUARANTINED"
    event = AuditEvent.objects.filter(object_id=number.number, action="recall").get()
    assert event.actor == "user:olga"


def test_refused_action_shows_the_domain_message_and_changes_nothing(ops_client, roshan):
    number = NumberFactory(issuer=roshan)
    response = ops_client.post(reverse("admin:numbering_number_act", args=[number.pk, "reinstate"]), follow=True)
    assert "Reinstate (into quarantine) refused" in response.content.decode()
    assert "INVALID_TRANSITION" in response.content.decode()
    number.refresh_from_db()
    assert number.state == "AVAILABLE" and number.version == 1


def test_bulk_actions_retire_renew_extend_and_reinstate(ops_client, alice):
    available = NumberFactory()
    assigned = number_in(State.ASSIGNED, alice)
    reserved = number_in(State.RESERVED, alice)
    url = reverse("admin:numbering_number_changelist")

    def act(action, *numbers):
        return ops_client.post(
            url, {"action": f"action_{action}", "_selected_action": [n.pk for n in numbers]}, follow=True
        ).content.decode()

    assert "Retire: 1 number(s) done." in act("retire", available)
    assert "Reinstate (into quarantine): 1 number(s) done." in act("reinstate", available)
    assert "Renew lease: 1 number(s) done." in act("renew", assigned)
    assert "Extend reservation: 1 number(s) done." in act("extend_reservation", reserved)
    page = act("retire", assigned)
    assert "Retire refused" in page and "INVALID_TRANSITION" in page
    assert {n.state for n in Number.objects.filter(pk__in=[available.pk, assigned.pk])} == {"QUARANTINED", "ASSIGNED"}


def test_auditor_cannot_act_and_compliance_may_only_recall(client, alice):
    number = number_in(State.ASSIGNED, alice)
    client.force_login(staff_user("aud", roles.AUDITOR))
    assert client.post(reverse("admin:numbering_number_act", args=[number.pk, "recall"])).status_code == 403
    client.force_login(staff_user("comp", roles.COMPLIANCE_OFFICER))
    page = client.post(reverse("admin:numbering_number_act", args=[number.pk, "retire"]), follow=True)
    assert "needs one of the roles commerce.ops, numbering.admin" in page.content.decode()
    page = client.post(reverse("admin:numbering_number_act", args=[number.pk, "recall"]), follow=True)
    assert "Recall: 1 number(s) done." in page.content.decode()


def test_overview_renders_charts_from_live_counts(ops_client, alice, atra):
    number_in(State.ASSIGNED, alice)
    NumberFactory.create_batch(3)
    page = ops_client.get(reverse("admin:numbering_number_overview")).content.decode()
    for chart in ("chart-issuer-kind-state", "chart-pool-utilisation", "chart-short-codes"):
        assert chart in page
    assert len(re.findall(r'class="bar-segment" data-state="AVAILABLE"', page)) >= 1
    assert 'data-state="ASSIGNED"' in page and "GENERAL_MSISDN" in page
    assert "<script" not in page.split('id="content-main"')[1]  # pure SVG, nothing to load


def test_every_admin_changelist_renders(ops_client, roshan, alice):
    number_in(State.ASSIGNED, alice)
    for name in (
        "numbering_number",
        "numbering_lease",
        "numbering_reservation",
        "numbering_quarantinepolicy",
        "core_outboxevent",
        "core_idempotencyrecord",
        "events_processedmessage",
        "contracts_issuer",
        "contracts_signingkey",
        "contracts_contract",
        "contracts_numberblock",
        "contracts_inventoryimport",
        "pools_tenant",
        "pools_inventorypool",
        "pools_tenantpool",
        "audit_auditevent",
        "audit_chainhead",
        "exports_regulatorexport",
    ):
        assert ops_client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name
    assert "Inventory overview" in ops_client.get(reverse("admin:index")).content.decode()


def test_import_wizard_upload_preview_commit(ops_client, roshan):
    signed = sign_csv(HEADER + msisdn_rows(4) + "+93731234567,MSISDN,,R-2026-01\n")
    response = ops_client.post(
        reverse("admin:contracts_inventoryimport_wizard"),
        {
            "issuer": "ROSHAN",
            "csv_file": SimpleUploadedFile("r.csv", signed.csv),
            "signature": SimpleUploadedFile("r.csv.sig", signed.signature),
        },
    )
    imp = InventoryImport.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{imp.pk}/wizard/")
    page = ops_client.get(response["Location"]).content.decode()
    assert "Signature verified" in page and "outside ROSHAN" in page and 'id="commit-submit"' in page
    assert Number.objects.count() == 0
    page = ops_client.post(
        reverse("admin:contracts_inventoryimport_commit", args=[imp.pk]), {"mode": "valid-rows"}, follow=True
    ).content.decode()
    assert "imported 4 number(s)" in page and Number.objects.count() == 4
    status = ops_client.get(reverse("admin:contracts_inventoryimport_status", args=[imp.pk])).json()
    assert status["status"] == "COMMITTED" and status["terminal"] and status["accepted"] == 4
    assert ops_client.get(reverse("admin:contracts_inventoryimport_change", args=[imp.pk])).status_code == 200


def test_import_wizard_shows_a_refused_signature(ops_client, roshan, atra):
    signed = sign_csv(HEADER + msisdn_rows(2), key="atra")
    response = ops_client.post(
        reverse("admin:contracts_inventoryimport_wizard"),
        {
            "issuer": "ROSHAN",
            "csv_file": SimpleUploadedFile("r.csv", signed.csv),
            "signature": SimpleUploadedFile("r.sig", signed.signature),
        },
        follow=True,
    )
    page = response.content.decode()
    assert "does not verify" in page and 'id="commit-submit"' not in page and Number.objects.count() == 0


def test_import_wizard_async_mode_queues_the_task(
    ops_client, roshan, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.INVENTORY_IMPORT_ASYNC = True
    from contracts import tasks

    calls = []
    monkeypatch.setattr(tasks.run_import_task, "delay", lambda *a: calls.append(a))  # the broker is Celery's concern
    signed = sign_csv(HEADER + msisdn_rows(2))
    with django_capture_on_commit_callbacks(execute=True):
        ops_client.post(
            reverse("admin:contracts_inventoryimport_wizard"),
            {
                "issuer": "ROSHAN",
                "csv_file": SimpleUploadedFile("r.csv", signed.csv),
                "signature": SimpleUploadedFile("r.sig", signed.signature),
            },
        )
    imp = InventoryImport.objects.get()
    assert calls == [(imp.pk, None, True)] and imp.status == "PENDING"
    page = ops_client.get(reverse("admin:contracts_inventoryimport_step", args=[imp.pk])).content.decode()
    assert "fetch(" in page  # the preview page polls until the worker has validated
    assert tasks.run_import_task.run(imp.pk, None, True)["status"] == "VERIFIED"
    calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ops_client.post(reverse("admin:contracts_inventoryimport_commit", args=[imp.pk]), {"mode": "valid-rows"})
    assert calls == [(imp.pk, "valid-rows", False)]
    assert InventoryImport.objects.get().status == "PENDING"
    page = ops_client.get(reverse("admin:contracts_inventoryimport_step", args=[imp.pk])).content.decode()
    assert "fetch(" in page  # the progress page polls
    assert tasks.run_import_task.run(imp.pk, "valid-rows")["status"] == "COMMITTED"


def test_quarantine_policy_change_is_audited_with_approver(client):
    admin_user = staff_user("adam", roles.NUMBERING_ADMIN)
    client.force_login(admin_user)
    policy = QuarantinePolicy.objects.get(case="MSISDN")
    url = reverse("admin:numbering_quarantinepolicy_change", args=[policy.pk])
    response = client.post(url, {"days": 120, "description": "per Legal memo 7", "approved_by": "L. Legal"})
    assert response.status_code == 302
    policy.refresh_from_db()
    assert (policy.days, policy.approved_by) == (120, "L. Legal") and policy.approved_at is not None
    event = AuditEvent.objects.get(action="quarantine_policy.update")
    assert event.actor == "user:adam" and event.before["days"] == 90 and event.after["days"] == 120


def test_signing_key_added_and_revoked_in_the_admin_is_audited(client, roshan):
    client.force_login(staff_user("kim", roles.KEY_MANAGER))
    pem = signing.public_pem(private_key("admin-added"))
    response = client.post(
        reverse("admin:contracts_signingkey_add"),
        {"issuer": roshan.pk, "public_key_pem": pem, "valid_from_0": "2999-01-01", "valid_from_1": "00:00:00"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    key = SigningKey.objects.get(fingerprint=signing.fingerprint(private_key("admin-added").public_key()))
    assert AuditEvent.objects.filter(action="signing_key.add", actor="user:kim").exists()
    dup = client.post(
        reverse("admin:contracts_signingkey_add"),
        {"issuer": roshan.pk, "public_key_pem": pem, "valid_from_0": "2999-01-01", "valid_from_1": "00:00:00"},
    )
    assert "already installed" in dup.content.decode()
    client.post(reverse("admin:contracts_signingkey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get(reverse("admin:contracts_signingkey_change", args=[key.pk])).status_code == 200


def test_admin_key_four_eyes_and_commerce_ops_cannot_add_keys(client, ops_client, roshan):
    """Issue 13 item 2 in the admin: ops may not install keys; the installer may not approve
    their own key; a second key manager may; a backdated valid_from is a form error."""
    pem = signing.public_pem(private_key("admin-4eyes"))
    form = {"issuer": roshan.pk, "public_key_pem": pem, "valid_from_0": "2999-01-01", "valid_from_1": "00:00:00"}
    assert ops_client.post(reverse("admin:contracts_signingkey_add"), form).status_code == 403
    client.force_login(staff_user("kim", roles.KEY_MANAGER))
    backdated = client.post(reverse("admin:contracts_signingkey_add"), {**form, "valid_from_0": "2020-01-01"})
    assert backdated.status_code == 200 and "may not lie in the past" in backdated.content.decode()
    assert client.post(reverse("admin:contracts_signingkey_add"), form).status_code == 302
    key = SigningKey.objects.get(fingerprint=signing.fingerprint(private_key("admin-4eyes").public_key()))
    changelist = reverse("admin:contracts_signingkey_changelist")
    client.post(changelist, {"action": "approve", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.approved_at is None
    client.force_login(staff_user("kai", roles.KEY_MANAGER))
    client.post(changelist, {"action": "approve", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.approved_by == "user:kai" and key.approved_at is not None
    assert AuditEvent.objects.filter(action="signing_key.approve", actor="user:kai").count() == 1


def test_contract_suspend_and_terminate_actions_go_through_the_audited_services(ops_client, roshan):
    active, draft = ContractFactory(issuer=roshan), ContractFactory(issuer=roshan, status="DRAFT")
    changelist = reverse("admin:contracts_contract_changelist")
    page = ops_client.post(
        changelist, {"action": "suspend", "_selected_action": [active.pk, draft.pk]}, follow=True
    ).content.decode()
    active.refresh_from_db()
    draft.refresh_from_db()
    assert (active.status, draft.status) == ("SUSPENDED", "DRAFT")  # a draft cannot be suspended: said, not done
    assert "1 contract(s) suspended" in page and "is DRAFT" in page
    # Terminating is numbering.admin's (as over REST, admin.contracts.terminate): ops' attempt does nothing.
    ops_client.post(changelist, {"action": "terminate", "_selected_action": [active.pk]})
    active.refresh_from_db()
    assert active.status == "SUSPENDED"
    ops_client.force_login(staff_user("adam", roles.NUMBERING_ADMIN))
    # The action leads to the preview (issue 16); the termination happens on its confirmation.
    preview = ops_client.post(changelist, {"action": "terminate", "_selected_action": [active.pk]})
    assert preview.status_code == 302
    active.refresh_from_db()
    assert active.status == "SUSPENDED"
    ops_client.post(preview["Location"], {"ends_on": timezone.localdate().isoformat(), "reason": "admin"})
    active.refresh_from_db()
    assert active.status == "TERMINATED" and active.ends_on is not None
    events = AuditEvent.objects.filter(object_id=active.reference).order_by("id")
    assert [(e.action, e.actor) for e in events] == [
        ("contract_suspend", "user:olga"),
        ("contract_terminate", "user:adam"),
    ]


def test_audit_verify_button_reports_chain_ok(ops_client, alice):
    number_in(State.ASSIGNED, alice)
    page = ops_client.post(reverse("admin:audit_auditevent_verify"), follow=True).content.decode()
    assert "Audit chain OK" in page


def test_leases_reservations_and_audit_are_found_by_a_number_typed_in_persian_digits(ops_client, alice):
    # Issue 16: every admin search reads numbers through core.formats, and says so.
    number = number_in(State.ASSIGNED, alice)
    typed = ("0" + number.number[3:]).translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    other = number_in(State.ASSIGNED, alice)
    for changelist in ("admin:numbering_lease_changelist", "admin:numbering_reservation_changelist"):
        page = ops_client.get(reverse(changelist), {"q": typed}).content.decode()
        assert number.number in page and other.number not in page, changelist
        assert "Persian" in page  # the search help names the forms
    page = ops_client.get(reverse("admin:audit_auditevent_changelist"), {"q": typed}).content.decode()
    assert number.number in page and other.number not in page
    page = ops_client.get(reverse("admin:numbering_number_changelist")).content.decode()
    assert "libphonenumber" in page and "Arabic-Indic" in page
