"""Regulator exports and the ad-hoc inventory CSV over HTTP (/api/admin/v1/exports/),
against real PostgreSQL and the private moto S3 server."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from core import worm as storage
from core.periods import previous_period
from core.signing import get_provider, verify_signature
from exports.inventory_csv import INVENTORY_COLUMNS
from exports.models import RegulatorExport
from exports.report import manifest_signing_bytes
from numbering.models import Number
from tests.api.conftest import Api, make_token
from tests.exports.conftest import EVIL_NAME, EVIL_REG, Seeded
from tests.exports.conftest import seeded_month as _seeded_month
from tests.factories import NumberFactory
from tests.s3server import free_port

pytestmark = pytest.mark.django_db

seeded_month = _seeded_month
A = "/api/admin/v1"


def last_month_numbers(count: int) -> tuple[str, list[Number]]:
    """`count` AVAILABLE numbers that already existed during last month."""
    period = previous_period()
    during = period.start + timedelta(days=1)
    numbers = [NumberFactory() for _ in range(count)]
    Number.objects.filter(pk__in=[n.pk for n in numbers]).update(created_at=during - timedelta(hours=1))
    return period.name, numbers


def _get_object(bucket: str, key: str, version: str) -> bytes:
    return storage.s3_client().get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()


def test_trigger_download_and_verify_a_month_over_http(worm_bucket: str) -> None:
    period, numbers = last_month_numbers(3)
    api, exporter = Api(), make_token("regulator.exporter")
    reply = api.post(f"{A}/exports/", exporter, {"period": period})
    assert reply.status == 201, reply.body
    body = reply.json
    assert body["status"] == "UPLOADED" and body["changed"] is True and body["row_count"] == 3
    assert reply.headers["Location"] == f"{A}/exports/{period}/" == body["url"]
    assert body["triggered_by"] == "user:test-regulator.exporter" and body["bucket"] == worm_bucket
    record = RegulatorExport.objects.get(period=period)
    assert record.status == RegulatorExport.Status.UPLOADED

    # Download = the exact recorded S3 object versions, with their content types.
    csv_reply = Client().get(
        body["csv_download"], HTTP_AUTHORIZATION=f"Bearer {make_token('auditor')}", HTTP_ACCEPT="text/csv"
    )
    assert csv_reply.status_code == 200 and csv_reply.streaming
    assert csv_reply["Content-Type"] == "text/csv; charset=utf-8"
    assert csv_reply["Content-Disposition"] == f'attachment; filename="numbering-{period}.csv"'
    csv_bytes = b"".join(csv_reply.streaming_content)
    assert csv_bytes == _get_object(worm_bucket, record.csv_key, record.csv_version_id)
    assert sorted(r["number"] for r in csv.DictReader(io.StringIO(csv_bytes.decode()))) == sorted(
        n.number for n in numbers
    )
    manifest_reply = api.get(body["manifest_download"], exporter)
    assert manifest_reply.status == 200 and manifest_reply.headers["Content-Type"] == "application/json"
    assert manifest_reply.body == _get_object(worm_bucket, record.manifest_key, record.manifest_version_id)
    manifest = json.loads(manifest_reply.body)
    assert manifest["period"] == period and manifest["row_count"] == 3
    public = get_provider().public_key(manifest["key_id"])
    assert verify_signature(public, manifest_signing_bytes(manifest), manifest["signature"])

    verified = api.post(f"{A}/exports/{record.pk}/verify/", make_token("compliance.officer"))
    assert verified.status == 200 and verified.json["ok"] is True and verified.json["problems"] == []
    assert any("signature valid" in c for c in verified.json["checks"])

    listed = api.get(f"{A}/exports/", make_token("auditor"), {"status": "UPLOADED"})
    assert [e["period"] for e in listed.json["results"]] == [period]
    by_id = api.get(f"{A}/exports/{record.pk}/", exporter)
    assert by_id.json == api.get(f"{A}/exports/{period}/", exporter).json


def test_rerunning_an_uploaded_period_answers_the_existing_record_and_changes_nothing(worm_bucket: str) -> None:
    period, _ = last_month_numbers(1)
    api, admin = Api(), make_token("numbering.admin")
    first = api.post(f"{A}/exports/", admin, {"period": period})
    versions = storage.s3_client().list_object_versions(Bucket=worm_bucket)["Versions"]
    again = api.post(f"{A}/exports/", admin, {"period": period})
    assert again.status == 200 and again.json["changed"] is False
    assert "nothing changed" in again.json["message"]
    assert again.json["id"] == first.json["id"] and again.json["csv_version_id"] == first.json["csv_version_id"]
    assert storage.s3_client().list_object_versions(Bucket=worm_bucket)["Versions"] == versions
    assert RegulatorExport.objects.get().attempts == 1


def test_a_storage_failure_is_503_and_stays_recorded_failed_then_a_retry_uploads(
    worm_bucket: str, settings: Any
) -> None:
    period, _ = last_month_numbers(1)
    api, admin = Api(), make_token("numbering.admin")
    endpoint = settings.S3_ENDPOINT_URL
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # the store goes away
    reply = api.post(f"{A}/exports/", admin, {"period": period})
    assert reply.status == 503 and reply.json["code"] == "UNAVAILABLE" and "recorded as FAILED" in reply.json["detail"]
    failed = api.get(f"{A}/exports/{period}/", admin)
    assert failed.json["status"] == "FAILED" and failed.json["error"] and failed.json["csv_download"] is None
    download = api.get(f"{A}/exports/{period}/download/", admin)
    assert download.status == 404 and "FAILED" in download.json["detail"]

    settings.S3_ENDPOINT_URL = endpoint
    retry = api.post(f"{A}/exports/", admin, {"period": period})
    assert retry.status == 201 and retry.json["status"] == "UPLOADED" and retry.json["attempts"] == 2


def test_download_while_the_store_is_down_is_503(worm_bucket: str, settings: Any) -> None:
    period, _ = last_month_numbers(1)
    api, admin = Api(), make_token("numbering.admin")
    assert api.post(f"{A}/exports/", admin, {"period": period}).status == 201
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    reply = api.get(f"{A}/exports/{period}/download/", admin)
    assert reply.status == 503 and reply.json["code"] == "UNAVAILABLE"


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"period": "2026-13"}, "period", "YYYY-MM"),
        ({"period": "2099-01"}, "period", "has not ended"),
        ({}, "period", "required"),
    ],
)
def test_bad_periods_are_400_naming_the_field(body: dict[str, Any], field: str, needle: str) -> None:
    reply = Api().post(f"{A}/exports/", make_token("numbering.admin"), body)
    assert reply.status == 400 and reply.json["errors"][0]["field"] == field and needle in reply.json["detail"]
    assert not RegulatorExport.objects.exists()


def test_unknown_exports_and_files_are_clear_problems() -> None:
    api, admin = Api(), make_token("numbering.admin")
    assert api.get(f"{A}/exports/2020-01/", admin).status == 404
    assert api.get(f"{A}/exports/999/download/", admin).status == 404
    assert api.get(f"{A}/exports/nope/", admin).json["code"] == "NOT_FOUND"
    RegulatorExport.objects.create(period="2020-01", status=RegulatorExport.Status.UPLOADED)
    bad = api.get(f"{A}/exports/2020-01/download/", admin, {"file": "secrets"})
    assert bad.status == 400 and bad.json["errors"][0]["field"] == "file"


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        ("compliance.officer", "POST", "exports/", True),
        ("regulator.exporter", "GET", "exports/", True),
        ("auditor", "POST", "exports/", False),
        ("auditor", "GET", "exports/", True),
        ("commerce.ops", "GET", "exports/", False),
        ("commerce.ops", "POST", "exports/", False),
        ("commerce.ops", "GET", "exports/inventory.csv", True),
        ("regulator.exporter", "GET", "exports/inventory.csv", False),
    ],
)
def test_export_roles(role: str, method: str, path: str, allowed: bool) -> None:
    reply = Api().call(method, f"{A}/{path}", make_token(role), {"period": "2026-13"} if method == "POST" else None)
    assert (reply.status == 403) == (not allowed), reply.status
    if allowed and method == "POST":
        assert reply.status == 400  # got past the role check to the period rule


def test_tenants_get_no_exports(alice: Any) -> None:
    tok = make_token("tenant.admin", alice)
    for path in ("exports/", "exports/inventory.csv"):
        assert Api().get(f"{A}/{path}", tok).status == 403


# --- ad-hoc inventory CSV -------------------------------------------------------------------------


def _csv(reply: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(reply.body.decode("utf-8"), newline="")))


def test_inventory_csv_streams_the_filtered_numbers_with_formula_cells_neutralised(seeded_month: Seeded) -> None:
    client = Client()
    reply = client.get(
        f"{A}/exports/inventory.csv", {"state": "ASSIGNED"}, HTTP_AUTHORIZATION=f"Bearer {make_token('auditor')}"
    )
    assert reply.status_code == 200 and reply.streaming
    assert reply["Content-Type"] == "text/csv; charset=utf-8"
    assert reply["Content-Disposition"].startswith('attachment; filename="inventory-')
    data = b"".join(reply.streaming_content).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(data, newline="")))
    assert list(rows[0]) == INVENTORY_COLUMNS
    assert {r["state"] for r in rows} == {"ASSIGNED"} and len(rows) == 2
    evil = next(r for r in rows if r["holder_registration_no"].endswith(EVIL_REG))
    assert evil["holder_name"] == "'" + EVIL_NAME and evil["holder_registration_no"] == "'" + EVIL_REG
    assert "\n=" not in data and ",=" not in data and ",@" not in data
    # The bare E.164 numbers are left alone; the block named "+block-a" is not.
    assert all(r["number"].startswith("+93") for r in rows) and {r["block"] for r in rows} == {"'+block-a"}


def test_inventory_csv_filters_match_the_numbers_list(seeded_month: Seeded) -> None:
    api, tok = Api(), make_token("numbering.admin")
    everything = _csv(api.get(f"{A}/exports/inventory.csv", tok))
    assert len(everything) == Number.objects.count()
    alice = _csv(api.get(f"{A}/exports/inventory.csv", tok, {"tenant": str(seeded_month.alice.id)}))
    assert {r["holder_name"] for r in alice} == {"Alice"}
    short = _csv(api.get(f"{A}/exports/inventory.csv", tok, {"kind": "SHORT_CODE"}))
    assert [r["kind"] for r in short] == ["SHORT_CODE"] and short[0]["vanity_tier"] == "'\rGOLD"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"state": "LOST"}, "state"), ({"kind": "FAX"}, "kind"), ({"tenant": "x"}, "tenant"), ({"prefix": "a"}, "prefix")],
)
def test_inventory_csv_refuses_bad_filters_before_streaming(params: dict[str, str], field: str) -> None:
    reply = Api().get(
        f"{A}/exports/inventory.csv", make_token("numbering.admin"), params, headers={"Accept": "text/csv"}
    )
    assert reply.status == 400 and reply.json["field"] == field
    assert reply.headers["Content-Type"].startswith("application/problem+json")
