"""Ad-hoc inventory CSV and the exports admin (list, trigger, download, verify)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from core import errors
from core.actors import Actor
from core.periods import previous_period
from exports.inventory_csv import INVENTORY_COLUMNS, inventory_csv_rows
from exports.models import RegulatorExport
from tests.conftest import as_tenant
from tests.exports.conftest import EVIL_NAME, EVIL_REG, Seeded

STAFF = Actor.user("ops.olga", roles=frozenset({"commerce.ops"}))


def _parse(lines: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(lines), newline="")))


@pytest.mark.django_db
def test_inventory_csv_applies_the_numbers_list_filters(seeded_month: Seeded) -> None:
    every = _parse(inventory_csv_rows({}, actor=STAFF))
    assert len(every) == len(seeded_month.numbers) and list(every[0]) == INVENTORY_COLUMNS
    assigned = _parse(inventory_csv_rows({"state": "assigned"}, actor=STAFF))
    assert {r["state"] for r in assigned} == {"ASSIGNED"} and len(assigned) == 2
    assert all(r["lease_expires_at"] for r in assigned)
    assert len(_parse(inventory_csv_rows({"state": "RESERVED,QUARANTINED"}, actor=STAFF))) == 2
    assert [r["kind"] for r in _parse(inventory_csv_rows({"kind": "short_code"}, actor=STAFF))] == ["SHORT_CODE"]
    assert len(_parse(inventory_csv_rows({"issuer": "roshan"}, actor=STAFF))) == 7
    alice = _parse(inventory_csv_rows({"tenant": str(seeded_month.alice.id)}, actor=STAFF))
    assert [r["holder_name"] for r in alice] == ["Alice"]
    first = seeded_month.numbers[0].number
    assert [r["number"] for r in _parse(inventory_csv_rows({"prefix": first}, actor=STAFF))] == [first]
    assert len(_parse(inventory_csv_rows({"pool": "STANDARD_SHORT_CODES"}, actor=STAFF))) == 1
    assert len(_parse(inventory_csv_rows({"vanity_tier": "\rGOLD"}, actor=STAFF))) == 1


@pytest.mark.django_db
def test_inventory_csv_neutralises_formula_text(seeded_month: Seeded) -> None:
    rows = _parse(inventory_csv_rows({}, actor=STAFF))
    evil = next(r for r in rows if r["number"] == seeded_month.numbers[1].number)
    assert evil["holder_name"] == "'" + EVIL_NAME and evil["holder_registration_no"] == "'" + EVIL_REG
    assert evil["contract_reference"] == "'-MOU-EVIL" and evil["block"] == "'+block-a"
    assert next(r for r in rows if r["kind"] == "SHORT_CODE")["vanity_tier"] == "'\rGOLD"


@pytest.mark.parametrize(
    ("filters", "field"),
    [({"state": "GONE"}, "state"), ({"kind": "fax"}, "kind"), ({"tenant": "x"}, "tenant"),
     ({"prefix": "=1"}, "prefix"), ({"colour": "red"}, "colour")],
)  # fmt: skip
@pytest.mark.django_db
def test_inventory_csv_refuses_bad_filters_naming_the_field(filters: dict[str, str], field: str) -> None:
    with pytest.raises(errors.ValidationError) as excinfo:
        inventory_csv_rows(filters, actor=STAFF)
    assert excinfo.value.field == field and excinfo.value.message.startswith(f"{field}:")


@pytest.mark.django_db
def test_inventory_csv_is_not_for_tenants(alice: Any) -> None:
    with pytest.raises(errors.ValidationError, match="for staff"):
        inventory_csv_rows({}, actor=as_tenant(alice))


# --- admin -----------------------------------------------------------------------------------


@pytest.fixture
def exporter_client(db: Any) -> Client:
    user = User.objects.create_user("rex", password="pw", is_staff=True)
    user.groups.add(Group.objects.create(name="regulator.exporter"))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_admin_trigger_lists_downloads_and_verifies(
    worm_bucket: str, exporter_client: Client, admin_client: Client
) -> None:
    changelist = reverse("admin:exports_regulatorexport_changelist")
    page = exporter_client.get(reverse("admin:exports_regulatorexport_trigger"))
    assert page.status_code == 200 and previous_period().name.encode() in page.content
    response = exporter_client.post(
        reverse("admin:exports_regulatorexport_trigger"), {"period": previous_period().name}
    )
    assert response.status_code == 302
    export = RegulatorExport.objects.get()
    assert export.status == RegulatorExport.Status.UPLOADED and export.triggered_by == "user:rex"
    listing = admin_client.get(changelist)
    assert listing.status_code == 200 and b"UPLOADED" in listing.content

    download = exporter_client.get(reverse("admin:exports_regulatorexport_download", args=[export.period, "csv"]))
    assert download.status_code == 200 and download["Content-Disposition"].endswith(f'numbering-{export.period}.csv"')
    assert b"".join(download.streaming_content).startswith(b"number,kind,")
    missing = exporter_client.get(reverse("admin:exports_regulatorexport_download", args=["2001-01", "csv"]))
    assert missing.status_code == 302

    verified = exporter_client.post(
        changelist, {"action": "verify_selected", "_selected_action": [export.pk]}, follow=True
    )
    assert b"verified" in verified.content

    bad = exporter_client.post(reverse("admin:exports_regulatorexport_trigger"), {"period": "2099-99"}, follow=True)
    assert b"must be a month as YYYY-MM" in bad.content


@pytest.mark.django_db
def test_admin_inventory_download_is_streamed_and_filtered(seeded_month: Seeded, admin_client: Client) -> None:
    url = reverse("admin:exports_inventory_csv")
    assert admin_client.get(url).status_code == 200
    response = admin_client.get(url, {"download": "1", "state": "ASSIGNED"})
    assert response.status_code == 200 and response.streaming
    rows = _parse(b"".join(response.streaming_content).decode())
    assert len(rows) == 2 and any(r["holder_name"] == "'" + EVIL_NAME for r in rows)
    bad = admin_client.get(url, {"download": "1", "kind": "fax"}, follow=True)
    assert b"Kind: &#x27;fax&#x27; must be MSISDN or SHORT_CODE" in bad.content


@pytest.mark.django_db
def test_staff_without_an_export_role_cannot_trigger(worm_bucket: str) -> None:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.post(reverse("admin:exports_regulatorexport_trigger"), {"period": "2020-01"}).status_code == 403
    assert client.get(reverse("admin:exports_inventory_csv")).status_code == 403
    assert not RegulatorExport.objects.exists()
