"""Consumers of other teams' events (DESIGN §4): tenant suspended / deleted → bulk recall;
tenant created / updated → the tenant mirror is provisioned from the tenant registry
(issue 16, ADR 1621), through the same audited tenant service as REST and the admin.

Durable pull consumers (deploy/nats/streams.json), explicit ack only after the effect is
committed. Each message is validated first: a bad one is logged, counted and terminated
(``msg.term()``), never redelivered. Processed message ids are stored (ProcessedMessage),
so a redelivery — after a crash between commit and ack, or a re-send by the producer —
changes nothing. A message whose processing fails is redelivered with back-off, up to
EVENT_CONSUMER_MAX_DELIVERIES times, then terminated with a critical log (ADR 0604).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
from django.conf import settings
from django.db import IntegrityError, close_old_connections, connections, transaction
from prometheus_client import Counter

from core import errors
from core.actors import Actor
from events.models import ProcessedMessage
from events.natsurl import redacted
from events.publishers import publisher_problem
from numbering import jobs
from pools.models import Tenant
from pools.services import tenant_registry_upsert, tenant_set_status

log = logging.getLogger(__name__)

SUSPENDED_SUBJECT = "compliance.tenant.suspended.v1"
DELETED_SUBJECT = "tenant.deleted.v1"
CREATED_SUBJECT = "tenant.created.v1"
UPDATED_SUBJECT = "tenant.updated.v1"
# subject → (stream, durable, tenant status, recall reason); the upserts have neither.
ROUTES: dict[str, tuple[str, str, str, str]] = {
    SUSPENDED_SUBJECT: ("COMPLIANCE", "numbering-tenant-suspended", Tenant.Status.SUSPENDED, "COMPLIANCE_SUSPENSION"),
    DELETED_SUBJECT: ("TENANT", "numbering-tenant-deleted", Tenant.Status.DELETED, "COMPLIANCE_DELETION"),
    CREATED_SUBJECT: ("TENANT", "numbering-tenant-created", "", ""),
    UPDATED_SUBJECT: ("TENANT", "numbering-tenant-updated", "", ""),
}
UPSERT_SUBJECTS = frozenset({CREATED_SUBJECT, UPDATED_SUBJECT})
ACTOR = Actor.system("compliance-consumer")
REGISTRY_ACTOR = Actor.system("tenant-registry")
# The tenant fields the registry sends in `data` (DELETED comes only as tenant.deleted.v1).
UPSERT_FIELDS: dict[str, tuple[type, int]] = {"name": (str, 200), "registration_no": (str, 64)}
UPSERT_STATUSES = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)

MESSAGES = Counter(
    "numbering_event_consumer_messages_total", "Consumed messages by subject and outcome", ["subject", "outcome"]
)
INVALID = Counter(
    "numbering_event_consumer_invalid_total", "Malformed messages terminated, by rule", ["subject", "rule"]
)


class InvalidMessage(ValueError):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class TenantEvent:
    message_id: str
    subject: str
    tenant_id: uuid.UUID
    reason: str
    stream_sequence: int | None = None
    fields: dict[str, str] | None = None  # tenant.created / tenant.updated: the tenant's fields


def parse_message(
    subject: str, data: bytes, headers: dict[str, str] | None, stream_sequence: int | None = None
) -> TenantEvent:
    """Validate a tenant event; raise InvalidMessage naming the field and the rule."""
    if subject not in ROUTES:
        raise InvalidMessage("subject", f"subject: {subject!r} is not one this consumer handles")
    problem = publisher_problem(subject, data, headers)  # ADR 1353: only the subject's publisher
    if problem:
        raise InvalidMessage("publisher", problem)
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidMessage("json", "body: not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidMessage("json", "body: must be a JSON object")
    message_id = body.get("id") or (headers or {}).get("Nats-Msg-Id")
    if not isinstance(message_id, str) or not message_id.strip() or len(message_id) > 200:
        raise InvalidMessage("id", "id: required, a non-empty string of at most 200 characters")
    if "type" in body and body["type"] != subject:
        raise InvalidMessage("type", f"type: {body['type']!r} does not match the subject {subject!r}")
    raw_data = body.get("data")
    data_part: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    raw_tenant = body.get("tenant_id") or data_part.get("tenant_id")
    if raw_tenant in (None, ""):
        raise InvalidMessage("tenant_id", "tenant_id: required (top level or in data)")
    try:
        tenant_id = uuid.UUID(str(raw_tenant))
    except ValueError:
        raise InvalidMessage("tenant_id", f"tenant_id: {raw_tenant!r} is not a UUID") from None
    if subject in UPSERT_SUBJECTS:
        fields = parse_tenant_fields(subject, data_part)
        return TenantEvent(message_id.strip(), subject, tenant_id, "", stream_sequence, fields)
    reason = data_part.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise InvalidMessage("reason", "data.reason: must be a string of at most 500 characters")
    return TenantEvent(message_id.strip(), subject, tenant_id, reason, stream_sequence)


def parse_tenant_fields(subject: str, data: dict[str, Any]) -> dict[str, str]:
    """The tenant fields of tenant.created.v1 (all of name, registration_no, segment) or
    tenant.updated.v1 (any of them, and status ACTIVE/SUSPENDED); each rule named."""
    fields: dict[str, str] = {}
    for name, (_kind, max_len) in UPSERT_FIELDS.items():
        if name in data:
            value = data[name]
            if not isinstance(value, str) or not value.strip() or len(value) > max_len:
                raise InvalidMessage(name, f"data.{name}: must be a non-empty string of at most {max_len} characters")
            fields[name] = value.strip()
    if "segment" in data:
        if data["segment"] not in Tenant.Segment.values:
            raise InvalidMessage("segment", f"data.segment: must be one of {', '.join(Tenant.Segment.values)}")
        fields["segment"] = data["segment"]
    if "status" in data:
        if data["status"] not in UPSERT_STATUSES:
            raise InvalidMessage("status", "data.status: must be ACTIVE or SUSPENDED (a deletion is tenant.deleted.v1)")
        fields["status"] = data["status"]
    missing = [n for n in ("name", "registration_no", "segment") if n not in fields]
    if subject == CREATED_SUBJECT and missing:
        raise InvalidMessage(missing[0], f"data.{missing[0]}: required in {subject}")
    if not fields:
        raise InvalidMessage("data", f"data: {subject} carries none of name, registration_no, segment, status")
    return fields


def handle_tenant_upsert(event: TenantEvent) -> str:
    """tenant.created / tenant.updated: create or change the tenant through the audited
    tenant service, and remember the message id in the same transaction (a replay changes
    nothing). A change our rules refuse (e.g. a DELETED tenant, a registration number that
    is another tenant's) is remembered as refused with its reason and not retried."""
    if ProcessedMessage.objects.filter(message_id=event.message_id).exists():
        return "duplicate"
    detail: dict[str, Any] = {"tenant_id": str(event.tenant_id), "fields": sorted(event.fields or {})}
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    outcome = tenant_registry_upsert(
                        tenant_id=event.tenant_id, data=dict(event.fields or {}), actor=REGISTRY_ACTOR
                    )
            except errors.DomainError as exc:
                outcome, detail["refused"] = "refused", exc.message
                log.warning("%s %s for tenant %s refused: %s", event.subject, event.message_id, event.tenant_id, exc)
            ProcessedMessage.objects.create(
                message_id=event.message_id,
                subject=event.subject,
                stream_sequence=event.stream_sequence,
                outcome=outcome,
                detail=detail,
            )
    except IntegrityError:
        return "duplicate"  # another consumer finished the same message first; ours rolled back
    log.info("%s %s for tenant %s: %s", event.subject, outcome, event.tenant_id, detail)
    return outcome


def handle_tenant_event(event: TenantEvent, *, heartbeat: Callable[[int], None] | None = None) -> str:
    """Apply the event (idempotent); return the outcome: applied / duplicate / unknown_tenant
    (created / updated / refused for the registry's upserts)."""
    if event.subject in UPSERT_SUBJECTS:
        return handle_tenant_upsert(event)
    if ProcessedMessage.objects.filter(message_id=event.message_id).exists():
        return "duplicate"
    _, _, status, recall_reason = ROUTES[event.subject]
    detail: dict[str, Any] = {"tenant_id": str(event.tenant_id), "reason": event.reason}
    try:
        changed = tenant_set_status(
            tenant_id=event.tenant_id, status=status, actor=ACTOR, reason=event.reason or recall_reason
        )
        detail["status_changed"] = changed
        result = jobs.tenant_recall_all(
            tenant_id=event.tenant_id, reason=recall_reason, actor=ACTOR, on_batch=heartbeat
        )
        detail["recall"] = result.counts
        outcome = "applied"
    except errors.TenantNotFound:
        outcome = "unknown_tenant"  # nothing of ours to recall; remembered like any other
    try:
        with transaction.atomic():
            ProcessedMessage.objects.create(
                message_id=event.message_id,
                subject=event.subject,
                stream_sequence=event.stream_sequence,
                outcome=outcome,
                detail=detail,
            )
    except IntegrityError:
        return "duplicate"  # another consumer finished the same message first
    log.info("%s %s for tenant %s: %s", event.subject, outcome, event.tenant_id, detail)
    return outcome


class EventConsumers:
    """Pull from every route's durable consumer and handle messages one at a time."""

    def __init__(
        self, nats_url: str | None = None, *, fetch_timeout: float = 1.0, max_deliveries: int | None = None
    ) -> None:
        self.nats_url = nats_url or settings.NATS_CONSUMER_URL
        self.fetch_timeout = fetch_timeout
        self.max_deliveries = max_deliveries or settings.EVENT_CONSUMER_MAX_DELIVERIES
        self.handled: list[tuple[str, str]] = []  # (message id or "?", outcome), for logs and tests

    async def _process(self, msg: Any) -> str:
        subject = msg.subject
        seq = getattr(getattr(msg, "metadata", None), "sequence", None)
        stream_seq = getattr(seq, "stream", None)
        try:
            event = parse_message(subject, msg.data, msg.headers, stream_seq)
        except InvalidMessage as exc:
            log.warning("terminating malformed %s message (stream seq %s): %s", subject, stream_seq, exc)
            INVALID.labels(subject, exc.rule).inc()
            MESSAGES.labels(subject, "invalid").inc()
            await msg.term()
            self.handled.append(("?", "invalid"))
            return "invalid"
        loop = asyncio.get_running_loop()

        def heartbeat(_: int) -> None:  # a long recall keeps the message ours
            asyncio.run_coroutine_threadsafe(msg.in_progress(), loop)

        def work() -> str:
            close_old_connections()
            try:
                return handle_tenant_event(event, heartbeat=heartbeat)
            finally:
                connections.close_all()  # messages are rare: no idle session left in the worker thread

        try:
            outcome = await asyncio.to_thread(work)
        except Exception as exc:  # noqa: BLE001 - a failed message is redelivered, then given up
            delivered = getattr(getattr(msg, "metadata", None), "num_delivered", 1) or 1
            if delivered >= self.max_deliveries:
                log.critical(
                    "giving up on %s %s for tenant %s after %d deliveries: %r",
                    subject,
                    event.message_id,
                    event.tenant_id,
                    delivered,
                    exc,
                )
                MESSAGES.labels(subject, "gave_up").inc()
                await msg.term()
                return "gave_up"
            log.error("%s %s failed (delivery %d), will be redelivered: %r", subject, event.message_id, delivered, exc)
            MESSAGES.labels(subject, "failed").inc()
            await msg.nak(delay=min(2.0**delivered, 60.0))
            return "failed"
        await msg.ack()  # only now: the effect and the processed id are committed
        MESSAGES.labels(subject, outcome).inc()
        self.handled.append((event.message_id, outcome))
        return outcome

    async def run(self, stop: asyncio.Event) -> None:
        async def on_error(exc: Exception) -> None:
            log.warning("event consumers: NATS error: %r", exc)

        nc = None
        while nc is None and not stop.is_set():
            try:
                nc = await nats.connect(
                    self.nats_url,
                    name="numbering-event-consumers",
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=on_error,
                )
            except Exception as exc:  # noqa: BLE001 - retry until NATS is there
                log.warning("event consumers: NATS at %s unreachable (%r); retrying", redacted(self.nats_url), exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2)
        if nc is None:
            return
        js = nc.jetstream()
        subs: dict[str, Any] = {}
        try:
            while not stop.is_set():
                for subject, (stream, durable, _, _) in ROUTES.items():
                    if subject not in subs:
                        try:
                            subs[subject] = await js.pull_subscribe_bind(durable=durable, stream=stream)
                        except Exception as exc:  # noqa: BLE001 - not provisioned yet: retry later
                            log.warning("event consumers: %s/%s not available (%r)", stream, durable, exc)
                            continue
                    try:
                        messages = await subs[subject].fetch(10, timeout=self.fetch_timeout / len(ROUTES))
                    except nats.errors.TimeoutError:
                        continue
                    except Exception as exc:  # noqa: BLE001 - connection trouble: back off a little
                        log.warning("event consumers: fetch from %s failed (%r)", durable, exc)
                        subs.pop(subject, None)
                        await asyncio.sleep(0.5)
                        continue
                    for msg in messages:
                        await self._process(msg)
                if not subs:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), 2)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()
