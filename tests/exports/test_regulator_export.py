"""Monthly regulator export against the private local S3 server and real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count
from prometheus_client import REGISTRY, generate_latest

from audit.models import AuditEvent
from audit.services import audit_append
from core import errors
from core import worm as storage
from core.actors import Actor
from core.clock import FakeClock
from core.models import OutboxEvent
from core.periods import previous_period
from core.signing import get_provider, verify_signature
from exports.metrics import last_success_families
from exports.models import RegulatorExport
from exports.report import CATEGORY_OF_STATE, CSV_COLUMNS, manifest_signing_bytes
from exports.selectors import regulator_export_list, regulator_export_open, regulator_export_pending_periods
from exports.services import ExportFailed, regulator_export_run
from exports.verify import regulator_export_verify
from numbering.models import Number
from tests.exports.conftest import EVIL_NAME, EVIL_REG, Seeded
from tests.factories import NumberFactory
from tests.s3server import free_port

ACTOR = Actor.user("compliance.carol", roles=frozenset({"compliance.officer"}))


def _get(bucket: str, key: str, version: str) -> bytes:
    return storage.s3_client().get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def _failures() -> float:
    return REGISTRY.get_sample_value("numbering_regulator_export_failures_total") or 0.0


@pytest.mark.django_db
def test_monthly_export_matches_the_database_is_signed_and_locked(
    worm_bucket: str, seeded_month: Seeded, fake_clock: FakeClock
) -> None:
    fake_clock.set(seeded_month.now)  # the month is over
    outcome = regulator_export_run(period=seeded_month.period, actor=ACTOR)
    record = RegulatorExport.objects.get(period=seeded_month.period)
    assert outcome.uploaded and record.status == RegulatorExport.Status.UPLOADED
    assert record.triggered_by == "user:compliance.carol" and record.attempts == 1

    data = _get(worm_bucket, record.csv_key, record.csv_version_id)
    rows = _rows(data)
    assert list(rows[0]) == CSV_COLUMNS
    assert len(rows) == record.row_count == Number.objects.count() == len(seeded_month.numbers)
    by_number = {r["number"]: r for r in rows}
    for n in Number.objects.select_related("tenant"):
        row = by_number[n.number]
        has_events = AuditEvent.objects.filter(object_id=n.number).exists()
        assert row["state"] == n.state and row["state_source"] == ("event" if has_events else "current")
        assert row["category"] == CATEGORY_OF_STATE[n.state]
    assigned = by_number[seeded_month.numbers[0].number]
    assert assigned["holder_name"] == "Alice" and assigned["holder_registration_no"] == "REG-ALICE"
    assert assigned["lease_starts_at"] and assigned["lease_expires_at"]
    assert by_number[seeded_month.numbers[2].number]["holder_registration_no"] == "REG-BOB"
    assert by_number[seeded_month.numbers[3].number]["holder_name"] == ""  # quarantined: nobody holds it

    # Totals per issuer x kind x block match a GROUP BY over the database.
    expected: Counter[tuple[str, str, str, str]] = Counter()
    for item in Number.objects.values("issuer__code", "kind", "block__name", "state").annotate(c=Count("id")):
        key = (item["issuer__code"], item["kind"], item["block__name"] or "", CATEGORY_OF_STATE[item["state"]])
        expected[key] += item["c"]
    manifest = json.loads(_get(worm_bucket, record.manifest_key, record.manifest_version_id))
    categories = CATEGORY_OF_STATE.values()
    got = Counter({(t["issuer"], t["kind"], t["block"], c): t[c] for t in manifest["totals"] for c in categories})
    assert +got == +expected
    assert record.totals == manifest["totals"]

    # The manifest: hash of the CSV, row count, signature by the key it names.
    import hashlib

    assert manifest["csv"]["sha256"] == hashlib.sha256(data).hexdigest() == record.sha256
    assert manifest["row_count"] == len(rows) and manifest["period"] == seeded_month.period
    assert manifest["csv"]["version_id"] == record.csv_version_id
    public = get_provider().public_key(manifest["key_id"])
    assert verify_signature(public, manifest_signing_bytes(manifest), manifest["signature"])
    tampered = dict(manifest, row_count=manifest["row_count"] + 1)
    assert not verify_signature(public, manifest_signing_bytes(tampered), manifest["signature"])

    # Both objects: COMPLIANCE for at least 7 years; the store refuses to delete them.
    client = storage.s3_client()
    floor = datetime.now(UTC) + timedelta(days=7 * 365)
    for key, version in ((record.csv_key, record.csv_version_id), (record.manifest_key, record.manifest_version_id)):
        head = client.head_object(Bucket=worm_bucket, Key=key, VersionId=version)
        assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"] >= floor
        with pytest.raises(ClientError, match="AccessDenied"):
            client.delete_object(Bucket=worm_bucket, Key=key, VersionId=version)
    assert record.retain_until >= floor

    event = OutboxEvent.objects.get(event_type="numbering.export.submitted.v1")
    assert event.envelope["data"]["sha256"] == record.sha256


@pytest.mark.django_db
def test_formula_text_comes_out_inert_in_the_regulator_csv(
    worm_bucket: str, seeded_month: Seeded, fake_clock: FakeClock
) -> None:
    fake_clock.set(seeded_month.now)  # the month is over
    regulator_export_run(period=seeded_month.period, actor=ACTOR)
    record = RegulatorExport.objects.get()
    rows = _rows(_get(worm_bucket, record.csv_key, record.csv_version_id))
    evil = next(r for r in rows if r["number"] == seeded_month.numbers[1].number)
    assert evil["holder_name"] == "'" + EVIL_NAME
    assert evil["holder_registration_no"] == "'" + EVIL_REG
    assert evil["contract_reference"] == "'-MOU-EVIL" and evil["block"] == "'+block-a"
    short = next(r for r in rows if r["kind"] == "SHORT_CODE")
    assert short["vanity_tier"] == "'\rGOLD"
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "@", "-", "\t", "\r")), cell
            assert not cell.startswith("+") or cell == row["number"], cell


@pytest.mark.django_db
def test_rerunning_an_uploaded_period_changes_nothing(
    worm_bucket: str, seeded_month: Seeded, fake_clock: FakeClock
) -> None:
    fake_clock.set(seeded_month.now)  # the month is over
    first = regulator_export_run(period=seeded_month.period, actor=ACTOR)
    versions = storage.s3_client().list_object_versions(Bucket=worm_bucket)["Versions"]
    again = regulator_export_run(period=seeded_month.period, actor=ACTOR)
    assert not again.uploaded and "already uploaded" in again.message and "nothing changed" in again.message
    assert storage.s3_client().list_object_versions(Bucket=worm_bucket)["Versions"] == versions
    record = RegulatorExport.objects.get()
    assert record.attempts == 1 and record.csv_version_id == first.export.csv_version_id
    assert OutboxEvent.objects.filter(event_type="numbering.export.submitted.v1").count() == 1


@pytest.mark.django_db
def test_storage_failure_is_recorded_counted_and_retried_by_the_next_run(
    worm_bucket: str, seeded_month: Seeded, fake_clock: FakeClock, settings: Any
) -> None:
    fake_clock.set(seeded_month.now)  # the month is over
    before = _failures()
    endpoint = settings.S3_ENDPOINT_URL
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # the store goes away
    with pytest.raises(ExportFailed, match="failed"):
        regulator_export_run(period=seeded_month.period, actor=ACTOR)
    record = RegulatorExport.objects.get()
    assert record.status == RegulatorExport.Status.FAILED and "upload of" in record.error
    assert _failures() == before + 1
    assert seeded_month.period in regulator_export_pending_periods()

    settings.S3_ENDPOINT_URL = endpoint
    outcome = regulator_export_run(period=seeded_month.period, actor=ACTOR)
    record.refresh_from_db()
    assert outcome.uploaded and record.status == RegulatorExport.Status.UPLOADED
    assert record.attempts == 2 and record.error == ""
    assert _failures() == before + 1
    gauge = last_success_families()[0].samples[0].value
    assert gauge == pytest.approx(record.uploaded_at.timestamp())


@pytest.mark.django_db
def test_state_at_period_end_comes_from_the_audit_trail(worm_bucket: str, alice: Any) -> None:
    from numbering import services

    period = previous_period()
    end = period.end
    assigned_later = NumberFactory()
    retired_in_period = NumberFactory()
    untouched = NumberFactory()
    created_later = NumberFactory()
    Number.objects.filter(id__in=[assigned_later.id, retired_in_period.id, untouched.id]).update(
        created_at=end - timedelta(days=3)
    )
    ops = Actor.user("ops.olga")
    services.number_reserve(number=assigned_later.number, tenant_id=alice.id, actor=ops)
    services.number_assign(number=assigned_later.number, tenant_id=alice.id, actor=ops)
    audit_append(
        actor="user:ops.olga", action="retire", object_type="number", object_id=retired_in_period.number,
        before={"state": "AVAILABLE"}, after={"number": {"state": "RETIRED", "tenant_id": None, "lease": None}},
        occurred_at=end - timedelta(days=1),
    )  # fmt: skip
    regulator_export_run(period=period.name, actor=ACTOR)
    record = RegulatorExport.objects.get()
    rows = {r["number"]: r for r in _rows(_get(worm_bucket, record.csv_key, record.csv_version_id))}
    assert set(rows) == {assigned_later.number, retired_in_period.number, untouched.number}
    assert created_later.number not in rows
    assert (rows[assigned_later.number]["state"], rows[assigned_later.number]["state_source"]) == (
        "AVAILABLE",
        "next-event",
    )
    assert rows[assigned_later.number]["holder_name"] == ""
    assert (rows[retired_in_period.number]["state"], rows[retired_in_period.number]["state_source"]) == (
        "RETIRED",
        "event",
    )
    assert (rows[untouched.number]["state"], rows[untouched.number]["state_source"]) == ("AVAILABLE", "current")


@pytest.mark.django_db
def test_verify_export_passes_for_a_clean_export_and_fails_for_a_forged_manifest(
    worm_bucket: str, seeded_month: Seeded, fake_clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_clock.set(seeded_month.now)  # the month is over
    regulator_export_run(period=seeded_month.period, actor=ACTOR)
    call_command("verify_export", "--period", seeded_month.period)
    out = capsys.readouterr().out
    assert "manifest signature valid" in out and "csv sha256 matches" in out and "verified" in out

    record = RegulatorExport.objects.get()
    manifest = json.loads(_get(worm_bucket, record.manifest_key, record.manifest_version_id))
    manifest["totals"][0]["assigned"] += 1  # someone "corrects" the totals without the key
    forged = storage.put_locked(record.manifest_key, json.dumps(manifest).encode(), content_type="application/json")
    RegulatorExport.objects.filter(pk=record.pk).update(manifest_version_id=forged.version_id)
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_export", "--period", seeded_month.period)
    assert excinfo.value.returncode == 1
    assert "signature does NOT verify" in capsys.readouterr().err


@pytest.mark.django_db
def test_verify_export_of_an_unknown_period_fails(worm_bucket: str) -> None:
    result = regulator_export_verify("2020-01")
    assert not result.ok and "not recorded" in result.problems[0]
    assert any("could not read" in p for p in result.problems)


@pytest.mark.django_db
def test_export_command_reports_upload_then_no_change(
    worm_bucket: str, alice: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    NumberFactory()
    Number.objects.update(created_at=datetime(2020, 1, 1, tzinfo=UTC))
    call_command("export_regulator_report", "--period", previous_period().name)
    assert "uploaded: 1 rows" in capsys.readouterr().out
    call_command("export_regulator_report", "--period", previous_period().name)
    assert "nothing changed" in capsys.readouterr().out
    with pytest.raises(CommandError, match="must be a month"):
        call_command("export_regulator_report", "--period", "bogus")


@pytest.mark.django_db
def test_open_streams_the_recorded_objects(worm_bucket: str, seeded_month: Seeded, fake_clock: FakeClock) -> None:
    fake_clock.set(seeded_month.now)  # the month is over
    regulator_export_run(period=seeded_month.period, actor=ACTOR)
    chunks, name, content_type = regulator_export_open(seeded_month.period, "csv")
    assert name == f"numbering-{seeded_month.period}.csv" and content_type.startswith("text/csv")
    assert b"".join(chunks).startswith(b"number,kind,")
    chunks, name, _ = regulator_export_open(seeded_month.period, "manifest")
    assert json.loads(b"".join(chunks))["period"] == seeded_month.period
    assert [e.period for e in regulator_export_list()] == [seeded_month.period]
    with pytest.raises(errors.ValidationError):
        regulator_export_open(seeded_month.period, "other")
    with pytest.raises(errors.DomainError, match="no uploaded export"):
        regulator_export_open("2001-01")


@pytest.mark.django_db
def test_monthly_task_exports_last_month_and_retries_failed_periods(worm_bucket: str, settings: Any) -> None:
    from exports.tasks import export_previous_month

    RegulatorExport.objects.create(period="2020-01", status=RegulatorExport.Status.FAILED, error="boom")
    RegulatorExport.objects.create(period="2099-01", status=RegulatorExport.Status.FAILED)  # not ended: skipped
    results = export_previous_month()
    assert set(results) == {"2020-01", previous_period().name, "2099-01"}
    assert RegulatorExport.objects.get(period="2020-01").status == RegulatorExport.Status.UPLOADED
    assert RegulatorExport.objects.get(period=previous_period().name).status == RegulatorExport.Status.UPLOADED
    assert "has not ended" in results["2099-01"]

    RegulatorExport.objects.create(period="2020-02", status=RegulatorExport.Status.FAILED)
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ExportFailed, match="2020-02"):
        export_previous_month()


def test_two_concurrent_runs_of_one_period_upload_once(committed: None, worm_bucket: str) -> None:
    import threading

    from django.db import connections

    NumberFactory()
    Number.objects.update(created_at=datetime(2020, 1, 1, tzinfo=UTC))
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def run() -> None:
        try:
            barrier.wait()
            outcomes.append(regulator_export_run(period=previous_period().name, actor=ACTOR).uploaded)
        except errors.Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, outcomes)) in (["CONFLICT", "True"], ["False", "True"])
    versions = storage.s3_client().list_object_versions(Bucket=worm_bucket)["Versions"]
    assert len(versions) == 2  # one CSV, one manifest
    assert RegulatorExport.objects.get().attempts == 1


@pytest.mark.django_db
def test_verify_reports_every_mismatch_of_a_validly_signed_but_wrong_manifest(
    worm_bucket: str, seeded_month: Seeded, fake_clock: FakeClock
) -> None:
    """Even a manifest signed with the right key must agree with the CSV it names and the
    CSV must be COMPLIANCE-locked for 7 years."""
    from core.signing import sign_document

    fake_clock.set(seeded_month.now)  # the month is over
    regulator_export_run(period=seeded_month.period, actor=ACTOR)
    record = RegulatorExport.objects.get()
    until = datetime.now(UTC) + timedelta(days=2)
    weak = storage.s3_client().put_object(
        Bucket=worm_bucket, Key=record.csv_key, Body=b"number\r\n+93790000001\r\n",
        ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until,
    )  # fmt: skip
    manifest = json.loads(_get(worm_bucket, record.manifest_key, record.manifest_version_id))
    manifest["csv"]["version_id"] = weak["VersionId"]
    manifest["row_count"] += 5
    forged = sign_document(manifest)
    stored = storage.put_locked(record.manifest_key, json.dumps(forged).encode(), content_type="application/json")
    RegulatorExport.objects.filter(pk=record.pk).update(manifest_version_id=stored.version_id)

    result = regulator_export_verify(seeded_month.period)
    problems = " | ".join(result.problems)
    assert "manifest signature valid" in " ".join(result.checks)
    assert "csv: Object Lock mode is GOVERNANCE" in problems
    assert "differs from the manifest's" in problems and "recorded in the database" in problems
    assert "bytes, the manifest says" in problems and "rows, the manifest says" in problems
    assert "totals do not add up" in problems


@pytest.mark.django_db
def test_last_success_gauge_is_unknown_before_the_first_export() -> None:
    import math

    assert math.isnan(last_success_families()[0].samples[0].value)


def test_no_process_reads_the_database_when_its_default_registry_is_scraped() -> None:
    """No database access is allowed in this test: the default registry, which every process
    serves, must render without it (the last-success gauge is read by the web process's
    reader thread instead, ADR 1506)."""
    text = generate_latest(REGISTRY).decode()
    assert "numbering_regulator_export_last_success_timestamp_seconds" not in text
    assert "numbering_regulator_export_failures" in text


@pytest.mark.django_db
def test_failure_after_the_csv_upload_keeps_the_locked_version_and_the_retry_completes(
    worm_bucket: str, seeded_month: Seeded, fake_clock: FakeClock, settings: Any
) -> None:
    fake_clock.set(seeded_month.now)  # the month is over
    settings.SIGNING_PROVIDER = "vault"  # the key provider is down after the CSV went up
    settings.VAULT_ADDR = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ExportFailed, match="Vault at VAULT_ADDR is unreachable"):
        regulator_export_run(period=seeded_month.period, actor=ACTOR)
    assert RegulatorExport.objects.get().status == RegulatorExport.Status.FAILED
    versions = storage.s3_client().list_object_versions(Bucket=worm_bucket)["Versions"]
    assert [v["Key"].rsplit(".", 1)[-1] for v in versions] == ["csv"]  # no manifest: incomplete

    settings.SIGNING_PROVIDER = "local"
    regulator_export_run(period=seeded_month.period, actor=ACTOR)
    record = RegulatorExport.objects.get()
    versions = storage.s3_client().list_object_versions(Bucket=worm_bucket)["Versions"]
    csv_versions = {v["VersionId"] for v in versions if v["Key"] == record.csv_key}
    assert len(csv_versions) == 2 and record.csv_version_id in csv_versions  # the first one is kept, not overwritten
    assert regulator_export_verify(seeded_month.period).ok
