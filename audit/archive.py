"""Archive of old audit months to WORM storage, and the verifier of that archive (ADR 1630).

A partition whose month ended more than AUDIT_HOT_MONTHS ago is written as a segment: JSON
lines, one event each (its canonical body plus prev_hash, hash and id), ordered by chain
and seq. Its manifest names the segment's sha256, the first and last (seq, hash) of every
chain in it, and the sha256 of the previous segment's manifest, so the segments form a hash
chain of their own; the manifest is signed (core.signing). Both objects go up with Object
Lock COMPLIANCE for AUDIT_ARCHIVE_RETENTION_YEARS, are read back and checked, an
AuditArchiveSegment row records them, and only then is the partition detached and dropped.

Crash safety: every step is re-runnable. A crash before the row is written leaves the
partition in place (the next run uploads a new version and records that one); a crash after
it leaves a recorded segment whose partition still exists, which the next run re-verifies
from storage and then drops.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import connections, transaction
from psycopg import sql

from audit.hashing import canonical_json, chain_hash, event_body
from audit.metrics import AUDIT_ARCHIVE_LAST_SUCCESS, AUDIT_ARCHIVED_THROUGH
from audit.models import GENESIS_HASH, AuditArchiveSegment
from audit.partitions import OWNER, PARENT, Partition, list_partitions, month_add, month_start
from core import clock, locks
from core import worm as storage
from core.signing import SigningError, sign_document, verify_document

logger = logging.getLogger(__name__)

SCHEMA = "numbering.audit-segment.v1"
GENESIS_MANIFEST = "0" * 64
COLUMNS = (
    "id, chain, seq, prev_hash, hash, occurred_at, actor, action, object_type, object_id, tenant_id,"
    " request_id, before, after"
)


class ArchiveError(Exception):
    """The archive job refused or could not finish a partition; the message says which and why."""


@dataclass
class ArchiveResult:
    archived: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # recorded by an earlier, interrupted run
    skipped_locked: bool = False


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _line(row: tuple[Any, ...]) -> dict[str, Any]:
    pk, chain, seq, prev_hash, digest, at, actor, action, otype, oid, tenant, rid, before, after = row
    # Django's psycopg setup hands raw jsonb back as text; the hash covers the decoded value.
    before, after = (json.loads(v) if isinstance(v, str) else v for v in (before, after))
    body = event_body(
        chain=chain, seq=seq, occurred_at=at, actor=actor, action=action, object_type=otype, object_id=oid,
        tenant_id=str(tenant) if tenant else None, request_id=rid, before=before, after=after,
    )  # fmt: skip
    return {**body, "id": pk, "prev_hash": prev_hash, "hash": digest}


class ChainWalker:
    """Replays events chain by chain from known tails; the one check shared by the archive
    job (before upload), the archive verifier and the restore path."""

    def __init__(self, tails: dict[int, tuple[int, str]]) -> None:
        self.tails = dict(tails)
        self.summary: dict[int, dict[str, Any]] = {}

    def feed(self, event: dict[str, Any]) -> str | None:
        """None when the event continues its chain; else why not."""
        chain, seq = int(event["chain"]), int(event["seq"])
        last_seq, last_hash = self.tails.get(chain, (0, GENESIS_HASH))
        if seq != last_seq + 1:
            return f"chain {chain}: expected seq {last_seq + 1}, found {seq}"
        if event["prev_hash"] != last_hash:
            return f"chain {chain} seq {seq}: prev_hash does not link to the previous event"
        body = {k: event[k] for k in event if k not in {"id", "prev_hash", "hash"}}
        if chain_hash(last_hash, body) != event["hash"]:
            return f"chain {chain} seq {seq}: hash does not match the event's content"
        entry = self.summary.setdefault(
            chain, {"first_seq": seq, "first_prev_hash": last_hash, "last_seq": seq, "last_hash": "", "events": 0}
        )
        entry.update(last_seq=seq, last_hash=event["hash"], events=entry["events"] + 1)
        self.tails[chain] = (seq, event["hash"])
        return None


def archived_tails(segments: Iterable[AuditArchiveSegment]) -> dict[int, tuple[int, str]]:
    """The last archived (seq, hash) of every chain, from the recorded segments."""
    tails: dict[int, tuple[int, str]] = {}
    for segment in segments:
        for chain, entry in segment.chains.items():
            tails[int(chain)] = (int(entry["last_seq"]), entry["last_hash"])
    return tails


def _segments(using: str = "default") -> list[AuditArchiveSegment]:
    # The archive job reads and writes the ledger as the owner; readers use the app role,
    # which may only SELECT it.
    return list(AuditArchiveSegment.objects.using(using).order_by("period_start"))


def _key(partition: Partition) -> str:
    end = month_add(partition.end, -1)
    period = f"{partition.start:%Y-%m}" if partition.start else f"until-{end:%Y-%m}"
    return f"{settings.AUDIT_ARCHIVE_PREFIX}/{period}/{partition.name}"


def _export(partition: Partition, tails: dict[int, tuple[int, str]]) -> tuple[bytes, ChainWalker, int]:
    walker = ChainWalker(tails)
    lines: list[bytes] = []
    with connections[OWNER].cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT " + COLUMNS + " FROM {} ORDER BY chain, seq").format(sql.Identifier(partition.name))
        )
        for row in cursor.fetchall():
            event = _line(row)
            problem = walker.feed(event)
            if problem:
                raise ArchiveError(f"{partition.name}: refusing to archive a chain that does not verify: {problem}")
            lines.append(canonical_json(event).encode("utf-8") + b"\n")
    return b"".join(lines), walker, len(lines)


def _upload(partition: Partition, previous: AuditArchiveSegment | None, tails: dict[int, tuple[int, str]]) -> None:
    data, walker, count = _export(partition, tails)
    key = _key(partition)
    years = settings.AUDIT_ARCHIVE_RETENTION_YEARS
    segment = storage.put_locked(f"{key}.jsonl", data, content_type="application/x-ndjson", years=years)
    manifest = sign_document(
        {
            "schema": SCHEMA,
            "partition": partition.name,
            "period_start": partition.start.isoformat() if partition.start else None,
            "period_end": partition.end.isoformat(),
            "segment_key": segment.key,
            "segment_version_id": segment.version_id,
            "segment_sha256": _sha(data),
            "events": count,
            "chains": {str(c): walker.summary[c] for c in sorted(walker.summary)},
            "prev_manifest_sha256": previous.manifest_sha256 if previous else GENESIS_MANIFEST,
            "created_at": clock.now().isoformat(),
        }
    )
    manifest_bytes = (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode("utf-8")
    stored = storage.put_locked(f"{key}.manifest.json", manifest_bytes, content_type="application/json", years=years)
    # Read both back before anything is recorded (the exports' verify-after-upload).
    if _read(segment.key, segment.version_id) != data or _read(stored.key, stored.version_id) != manifest_bytes:
        raise ArchiveError(f"{partition.name}: the stored segment does not read back as written")
    with transaction.atomic(using=OWNER):
        AuditArchiveSegment.objects.using(OWNER).create(
            partition=partition.name,
            period_start=partition.start or datetime.min.replace(tzinfo=partition.end.tzinfo),
            period_end=partition.end,
            object_key=segment.key,
            version_id=segment.version_id,
            manifest_key=stored.key,
            manifest_version_id=stored.version_id,
            sha256=_sha(data),
            manifest_sha256=_sha(manifest_bytes),
            prev_manifest_sha256=previous.manifest_sha256 if previous else GENESIS_MANIFEST,
            events=count,
            chains=manifest["chains"],
            key_id=str(manifest["key_id"]),
            signature=str(manifest["signature"]),
            retain_until=min(segment.retain_until, stored.retain_until),
            archived_at=clock.now(),
        )


def _read(key: str, version_id: str) -> bytes:
    body, _ = storage.open_object(key, version_id)
    try:
        return bytes(body.read())
    except (BotoCoreError, ClientError) as exc:  # e.g. the stored checksum no longer matches
        raise storage.StorageError(f"reading s3://{key} version {version_id} failed: {exc}") from exc


def _drop(segment: AuditArchiveSegment) -> None:
    """Detach and drop the partition, unless it changed since its export."""
    with transaction.atomic(using=OWNER), connections[OWNER].cursor() as cursor:
        name = sql.Identifier(segment.partition)
        cursor.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(name))
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(name))
        if cursor.fetchone()[0] != segment.events:
            # A late (back-dated) write landed after the export: archive it again next run.
            AuditArchiveSegment.objects.using(OWNER).filter(pk=segment.pk).delete()
            raise ArchiveError(f"{segment.partition} changed after its export; it will be archived again")
        cursor.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.Identifier(PARENT), name))
        cursor.execute(sql.SQL("DROP TABLE {}").format(name))
        AuditArchiveSegment.objects.using(OWNER).filter(pk=segment.pk).update(dropped_at=clock.now())


def archive_audit_partitions(*, now: datetime | None = None) -> ArchiveResult:
    """Archive and drop every partition whose month ended AUDIT_HOT_MONTHS or more ago,
    oldest first (segments link in order). Idempotent; one run at a time."""
    now = now or clock.now()
    cutoff = month_add(month_start(now), -settings.AUDIT_HOT_MONTHS)
    result = ArchiveResult()
    with locks.try_lock(locks.AUDIT_ARCHIVE, "archive", using=OWNER) as acquired:
        if not acquired:
            result.skipped_locked = True
            return result
        attached = {p.name for p in list_partitions()}
        for segment in _segments(OWNER):
            if segment.dropped_at is None and segment.partition in attached:
                verify_segment(segment)  # recorded by a run that stopped before the drop
                _drop(segment)
                result.recovered.append(segment.partition)
        for partition in list_partitions():
            if partition.end > cutoff:
                break
            segments = _segments(OWNER)
            _upload(partition, segments[-1] if segments else None, archived_tails(segments))
            recorded = AuditArchiveSegment.objects.using(OWNER).get(partition=partition.name)
            _drop(recorded)
            result.archived.append(partition.name)
        segments = _segments(OWNER)
    if segments:
        AUDIT_ARCHIVED_THROUGH.set(segments[-1].period_end.timestamp())
    AUDIT_ARCHIVE_LAST_SUCCESS.set(clock.now().timestamp())
    return result


# --- reading and verifying the archive ------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveBreak:
    partition: str
    reason: str


def _load_manifest(segment: AuditArchiveSegment) -> dict[str, Any]:
    data = _read(segment.manifest_key, segment.manifest_version_id)
    if _sha(data) != segment.manifest_sha256:
        raise ArchiveError(f"{segment.partition}: manifest sha256 differs from the one recorded at archive time")
    try:
        manifest = json.loads(data)
        valid = isinstance(manifest, dict) and verify_document(manifest)
    except (ValueError, SigningError) as exc:
        raise ArchiveError(f"{segment.partition}: manifest unreadable: {exc}") from exc
    if not valid:
        raise ArchiveError(f"{segment.partition}: manifest signature does not verify")
    return manifest


def _events_of(segment: AuditArchiveSegment, manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    data = _read(manifest["segment_key"], manifest["segment_version_id"])
    if _sha(data) != manifest["segment_sha256"]:
        raise ArchiveError(f"{segment.partition}: segment sha256 differs from its signed manifest")
    for line in data.splitlines():
        yield json.loads(line)


def verify_segment(
    segment: AuditArchiveSegment, tails: dict[int, tuple[int, str]] | None = None
) -> tuple[dict[str, Any], ChainWalker]:
    """Check one stored segment: manifest hash + signature, segment hash, every event's hash
    and link (from `tails`, else from the recorded first prev_hash of each chain), and that
    the manifest's per-chain summary is what the events say. Raises ArchiveError."""
    manifest = _load_manifest(segment)
    if tails is None:
        tails = {int(c): (int(e["first_seq"]) - 1, e["first_prev_hash"]) for c, e in manifest["chains"].items()}
    walker = ChainWalker(tails)
    count = 0
    for event in _events_of(segment, manifest):
        problem = walker.feed(event)
        if problem:
            raise ArchiveError(f"{segment.partition}: {problem}")
        count += 1
    summary = {str(c): walker.summary[c] for c in sorted(walker.summary)}
    if count != manifest["events"] or summary != manifest["chains"]:
        raise ArchiveError(f"{segment.partition}: events do not match the manifest's summary")
    return manifest, walker


@dataclass
class ArchiveVerifyOutcome:
    segments: int = 0
    events: int = 0
    tails: dict[int, tuple[int, str]] = field(default_factory=dict)
    breaks: list[ArchiveBreak] = field(default_factory=list)
    hashes: dict[tuple[int, int], str] = field(default_factory=dict)  # the wanted (chain, seq)


def verify_archive(wanted: set[tuple[int, int]] | None = None) -> ArchiveVerifyOutcome:
    """Every archived segment in order: each verifies, each manifest links to the one before
    (prev_manifest_sha256), each chain continues across segments. The tails it returns are
    where the hot chains must continue; `wanted` (chain, seq) hashes are collected for the
    checkpoint comparison."""
    outcome = ArchiveVerifyOutcome()
    previous = GENESIS_MANIFEST
    for segment in _segments():
        try:
            manifest, walker = verify_segment(segment, outcome.tails)
        except (ArchiveError, storage.StorageError) as exc:
            outcome.breaks.append(ArchiveBreak(segment.partition, str(exc)))
            return outcome  # later links cannot be trusted once one segment fails
        if manifest["prev_manifest_sha256"] != previous or segment.prev_manifest_sha256 != previous:
            outcome.breaks.append(ArchiveBreak(segment.partition, "does not link to the previous segment's manifest"))
            return outcome
        previous = segment.manifest_sha256
        outcome.tails = walker.tails
        outcome.segments += 1
        outcome.events += int(manifest["events"])
        if wanted:
            for event in _events_of(segment, manifest):
                pair = (int(event["chain"]), int(event["seq"]))
                if pair in wanted:
                    outcome.hashes[pair] = event["hash"]
    return outcome


def archived_through() -> datetime | None:
    """End of the newest archived month (None: nothing archived)."""
    last = AuditArchiveSegment.objects.order_by("-period_end").first()
    return last.period_end if last else None


def read_archived_events(*, period: str | None = None, object_id: str | None = None) -> list[dict[str, Any]]:
    """The archived events of one month (YYYY-MM) and/or one object (e.g. a number), from
    verified segments only — the read path for disputes (restore_audit_segment, admin)."""
    segments = _segments()
    if period:
        try:
            start = datetime.strptime(period, "%Y-%m").replace(tzinfo=month_start(clock.now()).tzinfo)
        except ValueError as exc:
            raise ArchiveError(f"period: {period!r} must be YYYY-MM") from exc
        segments = [s for s in segments if s.period_start <= start < s.period_end]
        if not segments:
            raise ArchiveError(f"period: {period} is not in the audit archive")
    found = []
    for segment in segments:
        manifest, _ = verify_segment(segment)
        for event in _events_of(segment, manifest):
            if object_id is None or event["object_id"] == object_id:
                found.append(event)
    return sorted(found, key=lambda e: (e["occurred_at"], e["chain"], e["seq"]))
