"""Signed checkpoints of the audit chain heads on WORM storage (DESIGN §6).

After a clean verify, the head (chain, seq, hash, time) of every chain is signed by the
export key provider and written with Object Lock COMPLIANCE under `audit-checkpoints/`.
Every later verify checks the current chains against every stored checkpoint: the event
at checkpoint.seq must still exist with hash == checkpoint.hash. A chain rewritten
consistently from genesis (all hashes recomputed, so it verifies on its own) contradicts
the first checkpoint taken before the rewrite, which nobody can delete or alter.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from audit.archive import ArchiveBreak, ArchiveError, ArchiveVerifyOutcome, archived_tails, verify_archive
from audit.metrics import AUDIT_CHAIN_OK, AUDIT_LAST_VERIFY
from audit.models import AuditArchiveSegment, AuditEvent, ChainHead
from audit.services import VerifyResult, audit_verify_chains
from core import clock
from core import worm as storage
from core.outbox import outbox_enqueue
from core.signing import SigningError, sign_document, verify_document

logger = logging.getLogger(__name__)

SCHEMA = "numbering.audit-checkpoint.v1"
CHAIN_BROKEN_EVENT = "numbering.audit.chain_broken.v1"
_STORE_ERRORS = (storage.StorageError, ClientError, BotoCoreError, SigningError, OSError, ArchiveError)


@dataclass(frozen=True)
class Checkpoint:
    key: str
    document: dict[str, Any]


@dataclass(frozen=True)
class CheckpointBreak:
    checkpoint: str  # object key
    chain: int | None
    seq: int | None
    reason: str


def _prefix() -> str:
    return settings.AUDIT_CHECKPOINT_PREFIX + "/"


def current_heads() -> list[dict[str, Any]]:
    return [
        {"chain": h.chain, "seq": h.seq, "hash": h.hash, "time": h.updated_at.isoformat()}
        for h in ChainHead.objects.order_by("chain")
    ]


def write_checkpoint(heads: list[dict[str, Any]] | None = None, *, now: datetime | None = None) -> str:
    """Sign and store one checkpoint of the given (verified) heads; returns its key."""
    now = now or clock.now()
    document = sign_document(
        {"schema": SCHEMA, "created_at": now.isoformat(), "chains": heads if heads is not None else current_heads()}
    )
    key = f"{_prefix()}{now:%Y/%m/%d}/{now:%Y%m%dT%H%M%S.%f}Z.json"
    body = (json.dumps(document, sort_keys=True, indent=2) + "\n").encode("utf-8")
    storage.put_locked(key, body, content_type="application/json")
    return key


def load_checkpoints(*, latest_only: bool = False) -> tuple[list[Checkpoint], list[CheckpointBreak]]:
    """Every stored checkpoint, oldest first; one whose signature does not verify is a break.
    `latest_only`: the newest valid one (and the invalid ones newer than it)."""
    checkpoints: list[Checkpoint] = []
    breaks: list[CheckpointBreak] = []
    keys = storage.list_keys(_prefix())
    for key in reversed(keys) if latest_only else keys:
        if latest_only and checkpoints:
            break
        body, _ = storage.open_object(key)
        try:
            document = json.loads(body.read())
            valid = isinstance(document, dict) and verify_document(document)
        except (ValueError, SigningError) as exc:
            breaks.append(CheckpointBreak(key, None, None, f"checkpoint unreadable: {exc}"))
            continue
        if not valid:
            breaks.append(CheckpointBreak(key, None, None, "checkpoint signature does not verify"))
            continue
        checkpoints.append(Checkpoint(key, document))
    return checkpoints, breaks


def check_against_checkpoints(
    checkpoints: list[Checkpoint],
    archived: dict[tuple[int, int], str] | None = None,
    archived_tails: dict[int, tuple[int, str]] | None = None,
) -> list[CheckpointBreak]:
    """For each checkpoint (oldest first) and chain: the event at its seq must exist with its
    hash — in the hot table, or in the archive (`archived`: hashes read from verified
    segments). Without `archived`, a seq at or below the archive's tail is not compared here
    (the incremental verify; --full compares it)."""
    breaks = []
    archived = archived or {}
    archived_tails = archived_tails or {}
    for checkpoint in checkpoints:
        heads = [h for h in checkpoint.document.get("chains", []) if int(h.get("seq", 0)) > 0]
        if not heads:
            continue
        wanted = Q()
        for head in heads:
            wanted |= Q(chain=int(head["chain"]), seq=int(head["seq"]))
        found = {(c, s): h for c, s, h in AuditEvent.objects.filter(wanted).values_list("chain", "seq", "hash")}
        for head in heads:
            chain, seq = int(head["chain"]), int(head["seq"])
            stored = found.get((chain, seq)) or archived.get((chain, seq))
            if stored is None and not archived and seq <= archived_tails.get(chain, (0, ""))[0]:
                continue  # archived: only --full reads the archive
            if stored is None:
                breaks.append(CheckpointBreak(checkpoint.key, chain, seq, "the event it recorded is gone"))
            elif stored != head["hash"]:
                breaks.append(
                    CheckpointBreak(
                        checkpoint.key,
                        chain,
                        seq,
                        f"hash {stored[:16]}… differs from the checkpoint's {head['hash'][:16]}…",
                    )
                )
    return breaks


@dataclass
class AuditVerifyOutcome:
    result: VerifyResult
    checkpoint_breaks: list[CheckpointBreak] = field(default_factory=list)
    checkpoints_checked: int = 0
    new_checkpoint: str | None = None
    warnings: list[str] = field(default_factory=list)
    full: bool = False
    archive_breaks: list[ArchiveBreak] = field(default_factory=list)
    archive_segments: int = 0
    archive_events: int = 0
    started_from: str = "genesis"

    @property
    def ok(self) -> bool:
        return self.result.ok and not self.checkpoint_breaks and not self.archive_breaks


def _wanted(checkpoints: list[Checkpoint]) -> set[tuple[int, int]]:
    return {
        (int(h["chain"]), int(h["seq"]))
        for c in checkpoints
        for h in c.document.get("chains", [])
        if int(h.get("seq", 0)) > 0
    }


def _starts(checkpoint: Checkpoint | None, tails: dict[int, tuple[int, str]]) -> tuple[dict[int, tuple[int, str]], str]:
    """Where each chain's walk begins: the later of the archive's tail and the checkpoint."""
    starts = dict(tails)
    source = "archive" if tails else "genesis"
    if checkpoint is not None:
        for head in checkpoint.document.get("chains", []):
            chain, seq = int(head["chain"]), int(head["seq"])
            if seq > starts.get(chain, (0, ""))[0]:
                # Walk on from the event as stored: whether it still has the checkpoint's
                # hash is check_against_checkpoints' question (a rewrite is reported there,
                # as contradicting the checkpoint, not as a chain that fails on its own).
                stored = AuditEvent.objects.filter(chain=chain, seq=seq).values_list("hash", flat=True).first()
                starts[chain] = (seq, stored or head["hash"])
                source = f"checkpoint {checkpoint.key}"
    return starts, source


def audit_verify_with_checkpoints(*, write: bool = True, full: bool = False) -> AuditVerifyOutcome:
    """The daily verify, incremental (ADR 1630): from the last signed checkpoint (its heads
    must still be there with their hashes), every event appended since, then a new
    checkpoint. Cost follows the events since the last checkpoint, not history.

    `full`: every archived segment (signature, hashes, links between segments), then every
    hot event from the archive's tail (the link into the hot chain), against every stored
    checkpoint. Without storage (AUDIT_CHECKPOINTS=0 or the store unreachable) the chains
    are verified from the archive's recorded tail (or genesis) and a warning says so."""
    warnings: list[str] = []
    checkpoints: list[Checkpoint] = []
    signature_breaks: list[CheckpointBreak] = []
    store_ok = settings.AUDIT_CHECKPOINTS
    if not store_ok:
        warnings.append("AUDIT_CHECKPOINTS is off: chains verified, no checkpoint compared or written")
    else:
        try:
            checkpoints, signature_breaks = load_checkpoints(latest_only=not full)
        except _STORE_ERRORS as exc:
            store_ok = False
            warnings.append(
                f"checkpoint storage unavailable ({type(exc).__name__}: {exc}); chains verified without checkpoints"
            )
    archive = ArchiveVerifyOutcome()
    if full:
        try:
            archive = verify_archive(_wanted(checkpoints))
        except _STORE_ERRORS as exc:
            archive.breaks.append(ArchiveBreak("(archive)", f"archive unreadable: {type(exc).__name__}: {exc}"))
        tails = archive.tails
        if archive.breaks:  # walk the hot chains from the recorded tails: report one break, not two
            tails = archived_tails(AuditArchiveSegment.objects.order_by("period_start"))
    else:
        tails = archived_tails(AuditArchiveSegment.objects.order_by("period_start"))
    latest = checkpoints[-1] if checkpoints and not full else None
    # One snapshot for the chains, the heads we checkpoint and the checkpoint comparison, so
    # appends racing the verify can neither fake a break nor slip unverified into a checkpoint.
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        starts, source = _starts(latest, tails)
        result = audit_verify_chains(starts)
        breaks = signature_breaks + check_against_checkpoints(checkpoints, archive.hashes if full else None, tails)
        heads = current_heads()
    outcome = AuditVerifyOutcome(result, breaks, len(checkpoints), None, warnings)
    outcome.full, outcome.started_from = full, source if not full else ("archive" if tails else "genesis")
    outcome.archive_breaks, outcome.archive_segments, outcome.archive_events = (
        archive.breaks,
        archive.segments,
        archive.events,
    )
    if outcome.ok and store_ok and write:
        try:
            outcome.new_checkpoint = write_checkpoint(heads)
        except _STORE_ERRORS as exc:
            warnings.append(f"could not write the checkpoint ({type(exc).__name__}: {exc})")
    AUDIT_CHAIN_OK.set(1 if outcome.ok else 0)
    AUDIT_LAST_VERIFY.set(clock.now().timestamp())
    if not outcome.ok:
        _publish_break(outcome)
    return outcome


def _publish_break(outcome: AuditVerifyOutcome) -> None:
    first_chain = outcome.result.breaks[0] if outcome.result.breaks else None
    first_checkpoint = outcome.checkpoint_breaks[0] if outcome.checkpoint_breaks else None
    data: dict[str, Any] = {
        "chain_breaks": [{"chain": b.chain, "seq": b.seq, "reason": b.reason} for b in outcome.result.breaks],
        "checkpoint_breaks": [
            {"checkpoint": b.checkpoint, "chain": b.chain, "seq": b.seq, "reason": b.reason}
            for b in outcome.checkpoint_breaks
        ],
        "archive_breaks": [{"partition": b.partition, "reason": b.reason} for b in outcome.archive_breaks],
        "verified": outcome.result.verified,
    }
    if first_chain:
        data.update(chain=first_chain.chain, seq=first_chain.seq)
    elif first_checkpoint:
        data.update(chain=first_checkpoint.chain, seq=first_checkpoint.seq, checkpoint=first_checkpoint.checkpoint)
    logger.critical("audit chain broken: %s", data)
    # Its own transaction: the alert must go out whatever happens to the caller's.
    with transaction.atomic():
        outbox_enqueue(event_type=CHAIN_BROKEN_EVENT, aggregate_id="audit-chain", data=data, subject=CHAIN_BROKEN_EVENT)
