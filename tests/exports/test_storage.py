"""The WORM store against the private local S3 server (moto). ADR 0701 lists what moto
does and does not enforce of Object Lock; these tests pin the parts we rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from django.core.management import call_command
from django.utils import timezone

from core import worm as storage


def test_provisioned_bucket_has_versioning_and_default_compliance_retention(worm_bucket: str) -> None:
    client = storage.s3_client()
    assert client.get_bucket_versioning(Bucket=worm_bucket)["Status"] == "Enabled"
    rule = client.get_object_lock_configuration(Bucket=worm_bucket)["ObjectLockConfiguration"]
    assert rule["ObjectLockEnabled"] == "Enabled"
    assert rule["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    assert rule["Rule"]["DefaultRetention"]["Years"] == 7


def test_provisioning_twice_changes_nothing(worm_bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = storage.provision_bucket(worm_bucket)
    assert (result.created, result.changed) == (False, [])
    call_command("provision_export_bucket")
    assert f"bucket {worm_bucket} unchanged" in capsys.readouterr().out


def test_provisioning_restores_a_weakened_default_retention(worm_bucket: str) -> None:
    storage.s3_client().put_object_lock_configuration(
        Bucket=worm_bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    assert storage.provision_bucket(worm_bucket).changed == ["default retention"]


def test_a_bucket_without_object_lock_is_refused_with_a_clear_error(worm_bucket: str) -> None:
    storage.s3_client().create_bucket(Bucket=worm_bucket + "-nolock")
    with pytest.raises(storage.StorageError, match="without Object Lock"):
        storage.provision_bucket(worm_bucket + "-nolock")


def test_locked_upload_is_confirmed_and_its_version_cannot_be_deleted(worm_bucket: str, tmp_path: Path) -> None:
    small = storage.put_locked("t/one.json", b"{}", content_type="application/json")
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * (storage.MULTIPART_CHUNK + 10))  # two parts
    big = storage.put_locked("t/big.csv", path, content_type="text/csv")
    floor = datetime.now(UTC) + timedelta(days=7 * 365)
    client = storage.s3_client()
    for obj in (small, big):
        head = client.head_object(Bucket=worm_bucket, Key=obj.key, VersionId=obj.version_id)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] >= floor
        with pytest.raises(ClientError, match="AccessDenied"):
            client.delete_object(Bucket=worm_bucket, Key=obj.key, VersionId=obj.version_id)
        with pytest.raises(ClientError, match="AccessDenied"):
            client.delete_object(
                Bucket=worm_bucket, Key=obj.key, VersionId=obj.version_id, BypassGovernanceRetention=True
            )
    assert big.size == storage.MULTIPART_CHUNK + 10


def test_empty_file_upload_still_produces_a_locked_version(worm_bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    obj = storage.put_locked("t/empty.csv", path, content_type="text/csv")
    assert obj.size == 0 and obj.lock_mode == "COMPLIANCE"


def test_upload_to_a_closed_port_raises_storage_error(worm_bucket: str, settings) -> None:  # type: ignore[no-untyped-def]
    from tests.s3server import free_port

    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(storage.StorageError, match="upload of"):
        storage.put_locked("t/x", b"x", content_type="text/plain")


def test_retain_until_adds_calendar_years_and_handles_leap_day() -> None:
    assert storage.retain_until(datetime(2024, 2, 29, 12, tzinfo=UTC), 7) == datetime(2031, 2, 28, 12, tzinfo=UTC)
    now = timezone.now()
    assert storage.minimum_retain_until(now) < storage.retain_until(now, 7)
