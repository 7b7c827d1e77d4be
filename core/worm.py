"""The write-once (S3 Object Lock) store for regulator exports and audit checkpoints.

boto3 straight to the S3 API: Object Lock headers, version ids and head_object read-backs
are the point here, and django-storages' Storage API exposes none of them. In development
and tests the endpoint is a local moto server (deploy/local/s3.sh, ADR 0701); in
production it is AWS S3 with the bucket of deploy/s3/.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from core import clock

logger = logging.getLogger(__name__)

COMPLIANCE = "COMPLIANCE"
# Parts of 16 MiB: a 1 000 000-row export (~150 MB) goes up in ~10 parts, memory stays flat.
MULTIPART_CHUNK = 16 * 1024 * 1024


class StorageError(Exception):
    """The object store failed or did not confirm what we asked of it."""


def s3_client() -> Any:
    """A new client per unit of work: settings may point elsewhere in tests, and a client
    is cheap next to an upload."""
    kwargs: dict[str, Any] = {
        "region_name": settings.S3_REGION,
        "config": Config(
            connect_timeout=settings.S3_CONNECT_TIMEOUT_SECONDS,
            read_timeout=60,
            retries={"max_attempts": settings.S3_MAX_ATTEMPTS, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    }
    if settings.S3_ENDPOINT_URL:
        kwargs["endpoint_url"] = settings.S3_ENDPOINT_URL
    if settings.S3_ACCESS_KEY_ID:
        kwargs["aws_access_key_id"] = settings.S3_ACCESS_KEY_ID
        kwargs["aws_secret_access_key"] = settings.S3_SECRET_ACCESS_KEY
    return boto3.client("s3", **kwargs)


def retain_until(now: datetime, years: int) -> datetime:
    """now + N calendar years (29 February → 28 February), whole seconds, UTC."""
    now = now.astimezone(UTC).replace(microsecond=0)
    try:
        return now.replace(year=now.year + years)
    except ValueError:
        return now.replace(year=now.year + years, day=28)


# --- provisioning ------------------------------------------------------------------------------


@dataclass
class ProvisionResult:
    bucket: str
    created: bool
    changed: list[str]


def provision_bucket(bucket: str | None = None, *, years: int | None = None) -> ProvisionResult:
    """Create the bucket with versioning + Object Lock + default retention COMPLIANCE N years.
    Idempotent: an existing, correct bucket is left alone; a bucket without Object Lock
    cannot be fixed after the fact (S3 rule) and is reported."""
    client = s3_client()
    bucket = bucket or settings.EXPORT_BUCKET
    years = years or settings.EXPORT_RETENTION_YEARS
    created, changed = False, []
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise StorageError(f"bucket {bucket}: {exc}") from exc
        create: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
        if settings.S3_REGION != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": settings.S3_REGION}
        client.create_bucket(**create)
        created = True
    if client.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        changed.append("versioning")
    try:
        lock = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as exc:
        raise StorageError(
            f"bucket {bucket} exists without Object Lock; S3 cannot add it to an existing bucket here."
            " Create a new bucket (EXPORT_BUCKET) with Object Lock enabled"
        ) from exc
    wanted = {"Mode": COMPLIANCE, "Years": years}
    current = lock.get("Rule", {}).get("DefaultRetention", {})
    if lock.get("ObjectLockEnabled") != "Enabled" or {k: current.get(k) for k in wanted} != wanted:
        client.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": wanted}},
        )
        changed.append("default retention")
    return ProvisionResult(bucket, created, changed)


# --- locked uploads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    version_id: str
    size: int
    lock_mode: str
    retain_until: datetime


def _confirm_lock(client: Any, bucket: str, key: str, version_id: str, until: datetime) -> StoredObject:
    head = client.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    mode, date = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
    if mode != COMPLIANCE or date is None or date < until:
        # AWS applies the lock headers of a multipart upload; the local moto server ignores
        # them on multipart (ADR 0701). Setting the retention explicitly is legal on both
        # (COMPLIANCE may be extended, never shortened), so do it and read back again.
        client.put_object_retention(
            Bucket=bucket,
            Key=key,
            VersionId=version_id,
            Retention={"Mode": COMPLIANCE, "RetainUntilDate": until},
        )
        head = client.head_object(Bucket=bucket, Key=key, VersionId=version_id)
        mode, date = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
    if mode != COMPLIANCE or date is None or date < until:
        raise StorageError(f"s3://{bucket}/{key} version {version_id}: lock not confirmed (mode={mode}, until={date})")
    return StoredObject(bucket, key, version_id, int(head["ContentLength"]), mode, date)


def put_locked(
    key: str, source: Path | bytes, *, content_type: str, bucket: str | None = None, years: int | None = None
) -> StoredObject:
    """Upload one object version with Object Lock COMPLIANCE until now + N years, then read
    it back with head_object and refuse to report success unless mode and date hold."""
    bucket = bucket or settings.EXPORT_BUCKET
    until = retain_until(clock.now(), years or settings.EXPORT_RETENTION_YEARS)
    client = s3_client()
    lock = {"ObjectLockMode": COMPLIANCE, "ObjectLockRetainUntilDate": until}
    try:
        if isinstance(source, bytes):
            response = client.put_object(
                Bucket=bucket, Key=key, Body=source, ContentType=content_type, ChecksumAlgorithm="SHA256", **lock
            )
            version_id = response.get("VersionId")
        else:
            version_id = _multipart(client, bucket, key, source, content_type, lock)
        if not version_id:
            raise StorageError(f"s3://{bucket}/{key}: no version id returned (is versioning on?)")
        return _confirm_lock(client, bucket, key, version_id, until)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"upload of s3://{bucket}/{key} failed: {exc}") from exc


def _multipart(client: Any, bucket: str, key: str, path: Path, content_type: str, lock: dict[str, Any]) -> str:
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type, **lock)
    upload_id = upload["UploadId"]
    parts = []
    try:
        with path.open("rb") as handle:
            number = 1
            while chunk := handle.read(MULTIPART_CHUNK):
                part = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk)
                parts.append({"PartNumber": number, "ETag": part["ETag"]})
                number += 1
        if not parts:  # an empty file still needs one (empty) part
            part = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"")
            parts.append({"PartNumber": 1, "ETag": part["ETag"]})
        done = client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            logger.warning("could not abort multipart upload of %s", key)
        raise
    return done.get("VersionId", "")


def head(key: str, version_id: str | None = None, *, bucket: str | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Bucket": bucket or settings.EXPORT_BUCKET, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    return s3_client().head_object(**kwargs)


def open_object(key: str, version_id: str | None = None, *, bucket: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The object's streaming body and its metadata (lock mode, retain-until, size)."""
    kwargs: dict[str, Any] = {"Bucket": bucket or settings.EXPORT_BUCKET, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        response = s3_client().get_object(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"download of s3://{kwargs['Bucket']}/{key} failed: {exc}") from exc
    return response["Body"], response


def list_keys(prefix: str, *, bucket: str | None = None) -> list[str]:
    paginator = s3_client().get_paginator("list_objects_v2")
    keys: list[str] = []
    for page in paginator.paginate(Bucket=bucket or settings.EXPORT_BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def minimum_retain_until(uploaded_at: datetime, years: int | None = None) -> datetime:
    """What a verifier accepts: retain-until ≥ upload + N years (a day's slack for clocks)."""
    return retain_until(uploaded_at, years or settings.EXPORT_RETENTION_YEARS) - timedelta(days=1)
