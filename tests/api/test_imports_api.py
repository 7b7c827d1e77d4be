"""Signed inventory imports and issuer signing keys over HTTP (/api/admin/v1/imports/,
/api/admin/v1/issuers/{id}/signing-keys/), through the same pipeline as the command and
the admin wizard, against real PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audit.models import AuditEvent
from contracts import signing
from contracts.imports import run_import
from contracts.models import InventoryImport, SigningKey
from core.models import OutboxEvent
from numbering.models import Number
from tests.api.conftest import Api, make_token
from tests.contracts import conftest as contract_fixtures
from tests.contracts.conftest import HEADER, Signed, msisdn_rows, private_key, sign_csv

# The import tests' fixtures: issuers with installed keys, pools, a private import directory.
_import_dir = contract_fixtures._import_dir
pools = contract_fixtures.pools
roshan = contract_fixtures.roshan
inventory_snapshot = contract_fixtures.inventory_snapshot

pytestmark = pytest.mark.django_db

A = "/api/admin/v1"
ADMIN = "numbering.admin"


def upload(
    signed: Signed,
    *,
    issuer: str = "ROSHAN",
    role: str = ADMIN,
    mode: str | None = None,
    dry_run: bool | None = None,
    signature: bytes | None = None,
) -> Any:
    data: dict[str, Any] = {
        "issuer": issuer,
        "csv": SimpleUploadedFile("inventory.csv", signed.csv, content_type="text/csv"),
        "signature": SimpleUploadedFile("inventory.csv.sig", signed.signature if signature is None else signature),
    }
    if mode is not None:
        data["mode"] = mode
    if dry_run is not None:
        data["dry_run"] = "true" if dry_run else "false"
    return Client().post(f"{A}/imports/", data, HTTP_AUTHORIZATION=f"Bearer {make_token(role)}")


def test_a_signed_csv_imports_over_http_with_202_location_and_final_state(roshan: Any) -> None:
    reply = upload(sign_csv(HEADER + msisdn_rows(12)))
    assert reply.status_code == 202, reply.content
    body = reply.json()
    assert reply.headers["Location"] == f"{A}/imports/{body['id']}/" == body["url"]
    assert body["status"] == "COMMITTED" and body["issuer"] == "ROSHAN" and body["created_by"] == "user:test-" + ADMIN
    assert (body["total_rows"], body["processed_rows"], body["accepted_count"]) == (12, 12, 12)
    assert body["progress_percent"] == 100.0 and body["report"] == []
    assert (
        body["outcome"]["committed"] and body["outcome"]["ok"] and "imported 12 number(s)" in body["outcome"]["message"]
    )
    assert Number.objects.filter(issuer=roshan, state="AVAILABLE").count() == 12
    assert AuditEvent.objects.filter(action="inventory.import", object_id=f"import:{body['id']}").exists()
    assert OutboxEvent.objects.filter(event_type="numbering.import.completed.v1").count() == 1

    api = Api()
    auditor = make_token("auditor")
    detail = api.get(body["url"], auditor)
    assert detail.status == 200 and detail.json["status"] == "COMMITTED" and detail.json["processed_rows"] == 12
    listed = api.get(f"{A}/imports/", auditor, {"issuer": "roshan", "status": "COMMITTED"})
    assert [i["id"] for i in listed.json["results"]] == [body["id"]]
    assert "report" not in listed.json["results"][0]


def test_the_same_file_again_is_a_noop_that_says_so(roshan: Any, inventory_snapshot: Any) -> None:
    signed = sign_csv(HEADER + msisdn_rows(5))
    first = upload(signed).json()
    before = inventory_snapshot()
    again = upload(signed)
    assert again.status_code == 202
    body = again.json()
    assert body["status"] == "ALREADY_IMPORTED" and body["outcome"]["noop"] and not body["outcome"]["committed"]
    assert f"already imported as import {first['id']}" in body["outcome"]["message"]
    assert inventory_snapshot() == before


def _flipped(signed: Signed) -> Signed:
    data = bytearray(signed.csv)
    data[-3] ^= 0x01
    return Signed(bytes(data), signed.signature)


@pytest.mark.parametrize(
    ("make", "field", "needle"),
    [
        (lambda: _flipped(sign_csv(HEADER + msisdn_rows(3))), "signature", "does not verify"),
        (lambda: Signed(sign_csv(HEADER + msisdn_rows(3)).csv, b"\x00" * 10), "signature", "does not verify"),
        (lambda: sign_csv(HEADER + msisdn_rows(3), key="mallory"), "signature", "does not verify"),
        (lambda: sign_csv("numero,kind,vanity_tier,block\n" + msisdn_rows(2)), "csv", "row 1, column 1"),
        (lambda: sign_csv(HEADER + "+93991234567,MSISDN,,B\n" + msisdn_rows(2)), "csv", "row 2, column number"),
        (lambda: sign_csv(HEADER + "=HYPERLINK(1),MSISDN,,B\n"), "csv", "formula"),
    ],
    ids=["flipped-byte", "truncated-signature", "wrong-key", "wrong-header", "outside-prefixes", "formula-cell"],
)
def test_refusals_are_422_problems_naming_the_rule_and_leave_the_inventory_untouched(
    roshan: Any, inventory_snapshot: Any, make: Any, field: str, needle: str
) -> None:
    before = inventory_snapshot()
    reply = upload(make())
    assert reply.status_code == 422, reply.content
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["code"] == "IMPORT_REFUSED" and problem["field"] == field
    assert needle in problem["detail"] or any(needle in e["message"] for e in problem["errors"])
    assert inventory_snapshot() == before
    # The refused upload is kept as a record (like the command and the wizard), at the problem's instance.
    refused = Api().get(problem["instance"], make_token("auditor"))
    assert refused.status == 200 and refused.json["status"] == "REJECTED" and refused.json["error"]


def test_bad_rows_in_all_or_nothing_mode_list_every_row_in_the_problem(roshan: Any, inventory_snapshot: Any) -> None:
    body = HEADER + msisdn_rows(2) + "+93991234567,MSISDN,,B\nnot-a-number,MSISDN,,B\n" + msisdn_rows(1, start=50)
    before = inventory_snapshot()
    reply = upload(sign_csv(body))
    assert reply.status_code == 422
    problem = reply.json()
    rows = [e for e in problem["errors"] if e["field"].startswith("csv row")]
    assert [e["field"] for e in rows] == ["csv row 4", "csv row 5"] and all(e["rule"] == "invalid" for e in rows)
    assert "valid-rows would import the 3 valid row(s)" in problem["detail"]
    assert inventory_snapshot() == before


def test_valid_rows_mode_imports_exactly_the_valid_rows_and_reports_the_rest(roshan: Any) -> None:
    body = HEADER + msisdn_rows(3) + "+93991234567,MSISDN,,B\n" + msisdn_rows(1)
    reply = upload(sign_csv(body), mode="valid-rows")
    assert reply.status_code == 202, reply.content
    data = reply.json()
    assert data["status"] == "COMMITTED" and data["mode"] == "valid-rows"
    assert (data["accepted_count"], data["rejected_count"], data["duplicate_count"]) == (3, 1, 1)
    assert [(r["row"], r["result"]) for r in data["report"]] == [(5, "invalid"), (6, "duplicate")]
    assert Number.objects.filter(issuer=roshan).count() == 3


def test_dry_run_previews_without_importing(roshan: Any, inventory_snapshot: Any) -> None:
    before = inventory_snapshot()
    reply = upload(sign_csv(HEADER + msisdn_rows(4)), dry_run=True)
    assert reply.status_code == 202
    data = reply.json()
    assert data["status"] == "VERIFIED" and data["outcome"]["dry_run"] and data["outcome"]["ok"]
    assert "4 row(s) would be imported" in data["outcome"]["message"]
    assert inventory_snapshot() == before


def test_unknown_issuer_and_bad_mode_are_refused_before_anything_is_stored(roshan: Any) -> None:
    reply = upload(sign_csv(HEADER + msisdn_rows(1)), issuer="NOPE")
    assert reply.status_code == 422 and reply.json()["field"] == "issuer" and "ROSHAN" in reply.json()["detail"]
    reply = upload(sign_csv(HEADER + msisdn_rows(1)), mode="some-rows")
    assert reply.status_code == 400 and reply.json()["errors"][0]["field"] == "mode"
    assert not InventoryImport.objects.exists()


def test_missing_files_and_json_bodies_are_clear_problems(roshan: Any) -> None:
    admin = make_token(ADMIN)
    reply = Client().post(f"{A}/imports/", {"issuer": "ROSHAN"}, HTTP_AUTHORIZATION=f"Bearer {admin}")
    assert reply.status_code == 400
    assert {e["field"] for e in reply.json()["errors"]} == {"csv", "signature"}
    as_json = Api().post(f"{A}/imports/", admin, {"issuer": "ROSHAN"})
    assert as_json.status == 415 and as_json.json["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert not InventoryImport.objects.exists()


def test_async_mode_answers_202_pending_and_queues_the_same_run(
    roshan: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.INVENTORY_IMPORT_ASYNC = True
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reply = upload(sign_csv(HEADER + msisdn_rows(6)))
    assert reply.status_code == 202
    data = reply.json()
    assert data["status"] == "PENDING" and data["outcome"] is None and data["total_rows"] == 6
    assert data["processed_rows"] == 0 and data["progress_percent"] == 0.0
    assert len(callbacks) == 1  # run_import_task.delay(id) once the upload is committed
    assert not Number.objects.exists()
    run_import(data["id"])  # what the worker runs
    detail = Api().get(reply.headers["Location"], make_token(ADMIN)).json
    assert detail["status"] == "COMMITTED" and detail["processed_rows"] == 6 and detail["progress_percent"] == 100.0


@pytest.mark.parametrize(
    ("role", "method", "allowed"),
    [
        ("commerce.ops", "POST", True),
        ("auditor", "POST", False),
        ("auditor", "GET", True),
        ("regulator.exporter", "GET", False),
        ("compliance.officer", "POST", False),
    ],
)
def test_import_roles(roshan: Any, role: str, method: str, allowed: bool) -> None:
    if method == "POST":
        status = upload(sign_csv(HEADER + msisdn_rows(2)), role=role).status_code
        assert (status == 202) == allowed and (status == 403) == (not allowed)
        assert Number.objects.exists() == allowed
    else:
        status = Api().get(f"{A}/imports/", make_token(role)).status
        assert status == (200 if allowed else 403)


def test_a_tenant_token_cannot_import(roshan: Any, alice: Any) -> None:
    reply = Client().post(
        f"{A}/imports/",
        {"issuer": "ROSHAN"},
        HTTP_AUTHORIZATION=f"Bearer {make_token('tenant.admin', alice)}",
    )
    assert reply.status_code == 403 and reply.json()["code"] == "FORBIDDEN"


def test_unknown_import_is_404(roshan: Any) -> None:
    api, tok = Api(), make_token(ADMIN)
    assert api.get(f"{A}/imports/999999/", tok).status == 404
    assert api.get(f"{A}/imports/abc/", tok).json["code"] == "NOT_FOUND"


# --- signing keys -----------------------------------------------------------------------------------


def test_signing_keys_by_issuer_code_or_id(roshan: Any) -> None:
    api, tok = Api(), make_token("auditor")
    by_code = api.get(f"{A}/issuers/roshan/signing-keys/", tok)
    by_id = api.get(f"{A}/issuers/{roshan.id}/signing-keys/", tok)
    assert by_code.status == by_id.status == 200 and by_code.json == by_id.json
    (key,) = by_code.json
    assert key["issuer"] == "ROSHAN" and key["usable"] and key["problem"] is None
    assert key["fingerprint"] == roshan.signing_keys.get().fingerprint
    assert api.get(f"{A}/issuers/ROSHAN/", tok).json["id"] == roshan.id
    assert api.get(f"{A}/issuers/NOPE/signing-keys/", tok).status == 404


def test_rotate_then_revoke_a_key_over_http_and_imports_follow(roshan: Any, inventory_snapshot: Any) -> None:
    api, ops = Api(), make_token("key.manager", sub="kim")
    new_pem = signing.public_pem(private_key("roshan-2027"))
    added = api.post(f"{A}/issuers/ROSHAN/signing-keys/", ops, {"public_key_pem": new_pem})
    assert added.status == 201, added.body
    assert not added.json["usable"] and added.json["problem"].startswith("awaiting approval")
    assert AuditEvent.objects.filter(action="signing_key.add", object_id=f"key:{added.json['fingerprint']}").exists()
    approve = f"{A}/issuers/ROSHAN/signing-keys/{added.json['fingerprint']}/approve/"
    approved = api.post(approve, make_token("key.manager", sub="kai"), None)
    assert approved.status == 200 and approved.json["usable"] and approved.json["approved_by"] == "user:kai"
    assert upload(sign_csv(HEADER + msisdn_rows(2), key="roshan-2027")).status_code == 202

    revoked = api.post(
        f"{A}/issuers/ROSHAN/signing-keys/{added.json['fingerprint']}/revoke/", ops, {"reason": "leaked"}
    )
    assert revoked.status == 200 and revoked.json["revoked_at"] and not revoked.json["usable"]
    assert revoked.json["problem"].startswith("revoked at")
    before = inventory_snapshot()
    refused = upload(sign_csv(HEADER + msisdn_rows(2, start=100), key="roshan-2027"))
    assert refused.status_code == 422 and "revoked" in refused.json()["detail"]
    assert inventory_snapshot() == before
    listed = api.get(f"{A}/issuers/ROSHAN/signing-keys/", ops).json
    assert sorted(k["usable"] for k in listed) == [False, True]


def test_adding_a_key_is_idempotent_with_a_key_and_refuses_duplicates_without(roshan: Any) -> None:
    api, admin = Api(), make_token(ADMIN)
    pem = signing.public_pem(private_key("roshan-idem"))
    path = f"{A}/issuers/ROSHAN/signing-keys/"
    first = api.post(path, admin, {"public_key_pem": pem}, headers={"Idempotency-Key": "k-1"})
    replay = api.post(path, admin, {"public_key_pem": pem}, headers={"Idempotency-Key": "k-1"})
    assert first.status == replay.status == 201 and first.body == replay.body
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert SigningKey.objects.filter(issuer=roshan).count() == 2
    other = api.post(
        path, admin, {"public_key_pem": signing.public_pem(private_key("x"))}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status == 422 and other.json["code"] == "IDEMPOTENCY_KEY_REUSED"
    dup = api.post(path, admin, {"public_key_pem": pem})
    assert dup.status == 400 and dup.json["field"] == "public_key_pem" and "already installed" in dup.json["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"public_key_pem": "not a key"}, "public_key_pem"),
        ({}, "public_key_pem"),
        (
            {"public_key_pem": "PEM", "valid_from": "2027-01-01T00:00:00Z", "valid_to": "2026-01-01T00:00:00Z"},
            "valid_to",
        ),
        ({"public_key_pem": "PEM", "valid_from": "yesterday"}, "valid_from"),
    ],
)
def test_bad_key_requests_name_the_field(roshan: Any, body: dict[str, Any], field: str) -> None:
    if body.get("public_key_pem") == "PEM":
        body = {**body, "public_key_pem": signing.public_pem(private_key("roshan-bad"))}
    reply = Api().post(f"{A}/issuers/ROSHAN/signing-keys/", make_token(ADMIN), body)
    assert reply.status == 400, reply.body
    assert field in {e["field"] for e in reply.json["errors"]}
    assert SigningKey.objects.filter(issuer=roshan).count() == 1


def test_revoking_a_key_of_another_issuer_or_an_unknown_one_is_404(roshan: Any) -> None:
    from tests.factories import IssuerFactory

    other = IssuerFactory(code="AWCC")
    api, admin = Api(), make_token(ADMIN)
    fingerprint = roshan.signing_keys.get().fingerprint
    assert api.post(f"{A}/issuers/{other.code}/signing-keys/{fingerprint}/revoke/", admin, {}).status == 404
    assert api.post(f"{A}/issuers/ROSHAN/signing-keys/{'0' * 64}/revoke/", admin, {}).status == 404
    assert roshan.signing_keys.get().revoked_at is None


def test_only_admin_and_commerce_ops_manage_keys(roshan: Any) -> None:
    pem = signing.public_pem(private_key("roshan-roles"))
    api = Api()
    for role in ("auditor", "compliance.officer", "regulator.exporter"):
        reply = api.post(f"{A}/issuers/ROSHAN/signing-keys/", make_token(role), {"public_key_pem": pem})
        assert reply.status == 403, role
    assert json.loads(api.get(f"{A}/issuers/ROSHAN/signing-keys/", make_token("regulator.exporter")).body)["code"] == (
        "FORBIDDEN"
    )
    assert SigningKey.objects.filter(issuer=roshan).count() == 1
