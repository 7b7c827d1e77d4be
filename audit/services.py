"""Appending to and verifying the hash-chained audit trail (DESIGN §6)."""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from audit.hashing import chain_hash, event_body
from audit.models import GENESIS_HASH, AuditArchiveSegment, AuditEvent, ChainHead
from core import clock, refdata, sqlbatch
from core.outbox import outbox_enqueue
from core.request_context import get_request_id

# What is audited, as the writing apps declare it (AppConfig.ready): audit knows no app,
# the apps tell it which object types and actions they record (the admin's filters).
_AUDITED: dict[str, set[str]] = {}


def register_audited(object_type: str, actions: Iterator[str] | list[str] | tuple[str, ...]) -> None:
    _AUDITED.setdefault(object_type, set()).update(actions)


def audited_object_types() -> list[str]:
    return sorted(_AUDITED)


def audited_actions() -> list[str]:
    return sorted(set().union(*_AUDITED.values())) if _AUDITED else []


def chain_for(object_id: str) -> int:
    """Events of one object always land on the same chain, so its history stays in order."""
    return zlib.crc32(object_id.encode()) % settings.AUDIT_CHAINS


def _jsonable(value: Any) -> Any:
    # Round-trip through JSON so what we hash is exactly what jsonb gives back.
    return None if value is None else json.loads(json.dumps(value, default=str))


def audit_append(
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    tenant_id: uuid.UUID | str | None = None,
    before: Any = None,
    after: Any = None,
    occurred_at: datetime | None = None,
) -> AuditEvent:
    """Append one event. Must run inside the business transaction: the chain head's row
    lock serialises appends to a chain and commits or rolls back with the change."""
    event, fragments = audit_prepare(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        tenant_id=tenant_id,
        before=before,
        after=after,
        occurred_at=occurred_at,
    )
    (event.id,) = sqlbatch.execute(fragments)
    return event


def _lock_head(chain: int) -> tuple[int, str]:
    """Lock the chain head and return (seq, hash): one statement unless the chain is new."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, hash FROM audit_chainhead WHERE chain = %s FOR UPDATE", [chain])
        row = cursor.fetchone()
        if row is None:  # the first event of this chain (AUDIT_CHAINS grew, or a fresh database)
            cursor.execute(
                "INSERT INTO audit_chainhead (chain, seq, hash, updated_at) VALUES (%s, 0, %s, now())"
                " ON CONFLICT (chain) DO NOTHING",
                [chain, GENESIS_HASH],
            )
            cursor.execute("SELECT seq, hash FROM audit_chainhead WHERE chain = %s FOR UPDATE", [chain])
            row = cursor.fetchone()
    return int(row[0]), str(row[1])


def audit_prepare(
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    tenant_id: uuid.UUID | str | None = None,
    before: Any = None,
    after: Any = None,
    occurred_at: datetime | None = None,
) -> tuple[AuditEvent, list[sqlbatch.Fragment]]:
    """Lock the chain head now (one statement) and return the event with the writes that
    append it: the event row and the head's new (seq, hash). The caller sends them with
    `sqlbatch.execute`, possibly together with its other final writes (ADR 1100); the head
    stays locked until the transaction ends, so nothing can slip in between."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_append must run inside the business transaction")
    chain = chain_for(object_id)
    occurred_at = occurred_at or clock.now()
    prev_seq, prev_hash = _lock_head(chain)
    seq = prev_seq + 1
    tenant = str(tenant_id) if tenant_id else None
    body = event_body(
        chain=chain,
        seq=seq,
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        tenant_id=tenant,
        request_id=get_request_id(),
        before=_jsonable(before),
        after=_jsonable(after),
    )
    digest = chain_hash(prev_hash, body)
    event = AuditEvent(
        chain=chain,
        seq=seq,
        prev_hash=prev_hash,
        hash=digest,
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        tenant_id=tenant,
        request_id=body["request_id"],
        before=body["before"],
        after=body["after"],
    )
    insert = sqlbatch.Fragment(
        "INSERT INTO audit_auditevent (chain, seq, prev_hash, hash, occurred_at, actor, action, object_type,"
        " object_id, tenant_id, request_id, before, after)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb) RETURNING id",
        [
            chain,
            seq,
            prev_hash,
            digest,
            occurred_at,
            actor,
            action,
            object_type,
            object_id,
            tenant,
            body["request_id"],
            None if body["before"] is None else json.dumps(body["before"]),
            None if body["after"] is None else json.dumps(body["after"]),
        ],
        select="(SELECT id FROM {cte})",
    )
    head = sqlbatch.Fragment(
        "UPDATE audit_chainhead SET seq = %s, hash = %s, updated_at = %s WHERE chain = %s",
        [seq, digest, occurred_at, chain],
    )
    return event, [insert, head]


@dataclass(frozen=True)
class ChainBreak:
    chain: int
    seq: int
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    verified: int
    chains: int
    breaks: list[ChainBreak]

    @property
    def ok(self) -> bool:
        return not self.breaks


def _events(chain: int, after_seq: int) -> Iterator[AuditEvent]:
    # (chain, seq, occurred_at) is indexed in every partition: an incremental verify reads
    # only the events after its starting point.
    return AuditEvent.objects.filter(chain=chain, seq__gt=after_seq).order_by("seq").iterator(chunk_size=2000)


def verify_chain(
    chain: int, head: ChainHead | None, start: tuple[int, str] | None = None
) -> tuple[int, ChainBreak | None]:
    """Recompute one chain from `start` (seq, hash) — genesis when None — to its head;
    return (events verified, first break or None)."""
    start_seq, prev_hash = start or (0, GENESIS_HASH)
    expected_seq, count = start_seq + 1, 0
    for event in _events(chain, start_seq):
        if event.seq != expected_seq:
            return count, ChainBreak(chain, expected_seq, f"sequence gap: found seq {event.seq}")
        if event.prev_hash != prev_hash:
            return count, ChainBreak(chain, event.seq, "prev_hash does not match the previous event's hash")
        body = event_body(
            chain=event.chain,
            seq=event.seq,
            occurred_at=event.occurred_at,
            actor=event.actor,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            tenant_id=str(event.tenant_id) if event.tenant_id else None,
            request_id=event.request_id,
            before=event.before,
            after=event.after,
        )
        if chain_hash(prev_hash, body) != event.hash:
            return count, ChainBreak(chain, event.seq, "hash does not match the event's content")
        prev_hash, expected_seq, count = event.hash, expected_seq + 1, count + 1
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or head.hash != prev_hash):
        return count, ChainBreak(
            chain, head.seq, f"chain head (seq {head.seq}) does not match the last event (seq {last_seq})"
        )
    return count, None


def audit_verify_chains(starts: dict[int, tuple[int, str]] | None = None) -> VerifyResult:
    """Verify every chain, each from its start (seq, hash) in `starts` (the last signed
    checkpoint or the archive's tail); by default from the archive's recorded tail of each
    chain (ADR 1630), else from genesis."""
    if starts is None:
        starts = {}
        for segment in AuditArchiveSegment.objects.order_by("period_start"):
            for chain, entry in segment.chains.items():
                starts[int(chain)] = (int(entry["last_seq"]), entry["last_hash"])
    heads = {h.chain: h for h in ChainHead.objects.all()}
    # Every configured chain, not only those with a head row: a chain whose head was deleted
    # must still be walked (without scanning history for distinct chains).
    chains = sorted(set(heads) | set(starts) | set(range(settings.AUDIT_CHAINS)))
    chains = [c for c in chains if c in heads or c in starts or AuditEvent.objects.filter(chain=c).exists()]
    total, breaks = 0, []
    for chain in chains:
        count, broken = verify_chain(chain, heads.get(chain), starts.get(chain))
        total += count
        if broken:
            breaks.append(broken)
    return VerifyResult(verified=total, chains=len(chains), breaks=breaks)


# --- audited saves of reference data (issue 13 item 3, ADR 1351) ----------------------------


def model_snapshot(instance: Any) -> dict[str, Any]:
    """The row's concrete fields (by attname) and its many-to-many ids, JSON-ready."""
    data: dict[str, Any] = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}
    if instance.pk is not None:
        for f in instance._meta.many_to_many:
            data[f.name] = sorted(getattr(instance, f.name).values_list("pk", flat=True))
    return _jsonable(data)


def audited_save(
    instance: Any,
    *,
    actor: str,
    object_type: str,
    object_id: Callable[[Any], str],
    save: Callable[[], None],
    check: Callable[[dict[str, Any] | None, Any], None] | None = None,
    tenant_id: Callable[[Any], Any] | None = None,
) -> AuditEvent | None:
    """Create, change or deactivate one reference-data row, audited and published, in one
    transaction (ADR 1351, ADR 1620).

    `save` writes the row (and its relations); `check(before, instance)` may refuse the
    change first (the row is locked while it decides). The audit event is
    `<object_type>.create|update|deactivate` with the before/after snapshots; the outbox
    event `numbering.<object_type>.created|updated|deactivated.v1` (core.refdata) carries the
    same snapshots. A save that changed nothing leaves neither."""
    with transaction.atomic():
        before = None
        if instance.pk is not None:
            current = type(instance)._default_manager.select_for_update().filter(pk=instance.pk).first()
            before = model_snapshot(current) if current is not None else None
        refdata.refuse_change_of_deactivated(before, f"{object_type} {object_id(instance)}")
        if check is not None:
            check(before, instance)
        save()
        after = model_snapshot(type(instance)._default_manager.get(pk=instance.pk))
        if before == after:
            return None
        verb = refdata.verb_of(before, after)
        oid = object_id(instance)
        tenant = tenant_id(instance) if tenant_id else None
        event = audit_append(
            actor=actor,
            action=f"{object_type}.{_AUDIT_ACTION[verb]}",
            object_type=object_type,
            object_id=oid,
            tenant_id=tenant,
            before=before,
            after=after,
        )
        changed = sorted(k for k in after if before is None or before.get(k) != after.get(k))
        outbox_enqueue(
            event_type=refdata.event_type(object_type, verb),
            aggregate_id=f"{object_type}:{oid}",
            tenant_id=tenant,
            data={
                "object_type": object_type,
                "object_id": oid,
                "actor": actor,
                "changed": changed,
                "before": before,
                "after": after,
                "audit_event_id": event.id,
            },
        )
        return event


_AUDIT_ACTION = {refdata.CREATED: "create", refdata.UPDATED: "update", refdata.DEACTIVATED: "deactivate"}
