"""The outbox relay (DESIGN §4, ADR 0601): outbox rows → JetStream, in order, exactly once.

* Rows carry ``partition = crc32(aggregate_id) % OUTBOX_PARTITIONS``; a relay publishes a
  partition only while it holds that partition's PostgreSQL advisory lock (session-level,
  on the relay's own connection, so a dead relay's partitions are freed at once).
* Relays balance themselves: each holds one "member" advisory lock, counts the members in
  pg_locks and owns at most ceil(partitions / members) partitions, releasing extras between
  batches. Two relays therefore both work, and a partition is never published by two at once.
* Within a partition rows go out strictly in id order, one at a time: the next is sent only
  after JetStream acked the previous one. A failing row stops its partition (back-off, retry
  the same row); other partitions go on.
* ``Nats-Msg-Id`` = the event id, so a row published but not yet marked (relay killed between
  ack and UPDATE) is dropped by JetStream's duplicate window when it is sent again.
* Wakes on LISTEN numbering_outbox (outbox_enqueue NOTIFYs at commit), polls as a fallback.

The relay talks to PostgreSQL through psycopg directly (not the ORM): advisory locks must
live on one long-lived session, and the outbox table has no RLS. A lost connection drops
the locks with it; the relay reconnects and re-acquires.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import nats
import psycopg
from django.conf import settings
from prometheus_client import Counter, Gauge

from core import locks
from core.outbox import NOTIFY_CHANNEL
from events.natsurl import redacted

log = logging.getLogger(__name__)

# Advisory lock namespaces (first int of the two-int form); the job locks use another.
MEMBER_NAMESPACE = locks.RELAY_MEMBERS  # one per running relay
PARTITION_NAMESPACE = locks.RELAY_PARTITIONS  # one per owned partition
MAX_MEMBERS = 256

PENDING = Gauge("numbering_outbox_pending_events", "Outbox events not yet acknowledged by JetStream")
OLDEST_AGE = Gauge("numbering_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox event")
PUBLISHED = Counter("numbering_outbox_published_total", "Outbox events published and acknowledged")
DUPLICATES = Counter("numbering_outbox_duplicates_total", "Publishes JetStream reported as duplicates (re-sends)")
FAILURES = Counter("numbering_outbox_publish_failures_total", "Failed publish attempts (the partition backs off)")
OWNED = Gauge("numbering_outbox_relay_partitions_owned", "Partitions this relay process owns")


def database_dsn(alias: str = "default") -> str:
    cfg = settings.DATABASES[alias]
    parts = {
        "host": cfg.get("HOST") or "127.0.0.1",
        "port": cfg.get("PORT") or "5432",
        "dbname": cfg["NAME"],
        "user": cfg["USER"],
        "password": cfg.get("PASSWORD") or "",
        # libpq options of a multi-host URL (target_session_attrs=read-write, ...): the
        # relay's own connection must find the primary after a failover too (ADR 1400).
        **{k: str(v) for k, v in dict(cfg.get("OPTIONS") or {}).items() if k != "options"},  # type: ignore[call-overload]
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v != "")


@dataclass
class RelayConfig:
    nats_url: str
    dsn: str
    partitions: int
    batch: int
    poll_seconds: float
    ack_timeout: float
    max_backoff: float
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    @classmethod
    def from_settings(cls, **overrides: Any) -> RelayConfig:
        values: dict[str, Any] = {
            "nats_url": settings.NATS_RELAY_URL,
            "dsn": database_dsn(),
            "partitions": settings.OUTBOX_PARTITIONS,
            "batch": settings.OUTBOX_RELAY_BATCH,
            "poll_seconds": float(settings.OUTBOX_RELAY_POLL_SECONDS),
            "ack_timeout": float(settings.OUTBOX_RELAY_ACK_TIMEOUT_SECONDS),
            "max_backoff": float(settings.OUTBOX_RELAY_MAX_BACKOFF_SECONDS),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class OutboxRelay:
    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.owned: set[int] = set()
        self.published = 0  # this instance's count (tests and logs)
        self.member_slot: int | None = None
        self._db: psycopg.AsyncConnection[Any] | None = None
        self._nc: Any = None
        self._js: Any = None
        self._wake = asyncio.Event()
        self._backoff_until: dict[int, float] = {}
        self._failures: dict[int, int] = {}
        self._last_rebalance = 0.0
        self._last_metrics = 0.0

    # --- connections -------------------------------------------------------------------

    async def _connect_db(self) -> psycopg.AsyncConnection[Any]:
        if self._db is None or self._db.closed:
            self.owned.clear()
            self.member_slot = None
            self._db = await psycopg.AsyncConnection.connect(self.config.dsn, autocommit=True)
            for slot in range(MAX_MEMBERS):
                row = await (await self._db.execute(locks.TRY_LOCK_SQL, [MEMBER_NAMESPACE, slot])).fetchone()
                if row and row[0]:
                    self.member_slot = slot
                    break
            log.info("outbox relay %s connected to PostgreSQL (member slot %s)", self.config.name, self.member_slot)
        return self._db

    async def _drop_db(self) -> None:
        self.owned.clear()
        OWNED.set(0)
        if self._db is not None:
            with contextlib.suppress(Exception):
                await self._db.close()
        self._db = None

    async def _connect_nats(self, stop: asyncio.Event) -> None:
        """Keep trying until connected; nats-py reconnects by itself after that."""

        async def quiet(exc: Exception) -> None:
            log.warning("outbox relay: NATS error: %r", exc)

        async def disconnected() -> None:
            log.warning("outbox relay: NATS disconnected; events stay in the outbox until it is back")

        async def reconnected() -> None:
            # The partitions that failed while NATS was away failed for want of NATS, not for
            # their events: retry them now, not after their backoff (the NATS-outage drill
            # measured a 30 s tail of drain without this).
            log.info("outbox relay: NATS reconnected")
            self._backoff_until.clear()
            self._failures.clear()
            self._wake.set()

        delay = 0.5
        while not stop.is_set():
            try:
                self._nc = await nats.connect(
                    self.config.nats_url,
                    name=f"outbox-relay {self.config.name}",
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=quiet,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                )
                self._js = self._nc.jetstream(timeout=self.config.ack_timeout)
                log.info("outbox relay %s connected to NATS", self.config.name)
                self._wake.set()
                return
            except Exception as exc:  # noqa: BLE001 - NATS unreachable: retry, the outbox keeps the events
                log.warning("outbox relay: NATS at %s unreachable (%r); retrying", redacted(self.config.nats_url), exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 5.0)

    async def _listen(self, stop: asyncio.Event) -> None:
        """LISTEN for commits of outbox rows; on any failure fall back to polling and retry."""
        while not stop.is_set():
            try:
                conn = await psycopg.AsyncConnection.connect(self.config.dsn, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - polling covers the gap
                log.warning("outbox relay: LISTEN failed (%r); polling until it is back", exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2)

    # --- partitions -----------------------------------------------------------------------

    async def rebalance(self) -> None:
        db = await self._connect_db()
        row = await (
            await db.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s::oid"
                " AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                [MEMBER_NAMESPACE],
            )
        ).fetchone()
        members = max(int(row[0]) if row else 1, 1)
        target = math.ceil(self.config.partitions / members)
        for partition in sorted(self.owned, reverse=True)[: max(len(self.owned) - target, 0)]:
            await db.execute(locks.UNLOCK_SQL, [PARTITION_NAMESPACE, partition])
            self.owned.discard(partition)
            log.info("outbox relay %s handed over partition %d", self.config.name, partition)
        if len(self.owned) < target:
            start = (self.member_slot or 0) * target  # spread first picks across members
            for i in range(self.config.partitions):
                partition = (start + i) % self.config.partitions
                if partition in self.owned:
                    continue
                got = await (await db.execute(locks.TRY_LOCK_SQL, [PARTITION_NAMESPACE, partition])).fetchone()
                if got and got[0]:
                    self.owned.add(partition)
                if len(self.owned) >= target:
                    break
        OWNED.set(len(self.owned))

    async def publish_partition(self, partition: int) -> int:
        """Publish one batch of the partition in id order; return how many were acked."""
        if self._js is None or self._nc is None or not self._nc.is_connected:
            return 0  # no NATS: nothing is the events' fault; the reconnect wakes the loop
        db = await self._connect_db()
        rows = await (
            await db.execute(
                "SELECT id, event_id, subject, envelope FROM numbering_outboxevent"
                " WHERE partition = %s AND published_at IS NULL ORDER BY id LIMIT %s",
                [partition, self.config.batch],
            )
        ).fetchall()
        acked: list[int] = []
        try:
            for row_id, event_id, subject, envelope in rows:
                if self._js is None or not self._nc.is_connected:
                    raise ConnectionError("NATS is not connected")
                body = envelope if isinstance(envelope, str) else json.dumps(envelope, separators=(",", ":"))
                ack = await self._js.publish(
                    subject,
                    body.encode(),
                    timeout=self.config.ack_timeout,
                    headers={"Nats-Msg-Id": str(event_id)},
                )
                if ack.duplicate:
                    DUPLICATES.inc()
                acked.append(row_id)
        except Exception as exc:  # noqa: BLE001 - whatever failed, this partition waits and retries the row
            failed_id = rows[len(acked)][0]
            await self._mark(db, acked)
            await db.execute(
                "UPDATE numbering_outboxevent SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                [repr(exc)[:2000], failed_id],
            )
            FAILURES.inc()
            failures = self._failures.get(partition, 0) + 1
            self._failures[partition] = failures
            wait = min(self.config.max_backoff, 0.5 * 2 ** min(failures - 1, 10))
            self._backoff_until[partition] = time.monotonic() + wait
            log.warning(
                "outbox relay: partition %d blocked at outbox id %d (%r); retrying in %.1fs",
                partition,
                failed_id,
                exc,
                wait,
            )
            return len(acked)
        await self._mark(db, acked)
        self._failures.pop(partition, None)
        self._backoff_until.pop(partition, None)
        return len(acked)

    async def _mark(self, db: psycopg.AsyncConnection[Any], ids: list[int]) -> None:
        if ids:
            await db.execute(
                "UPDATE numbering_outboxevent SET published_at = now(), last_error = ''"
                " WHERE id = ANY(%s) AND published_at IS NULL",
                [ids],
            )
            PUBLISHED.inc(len(ids))
            self.published += len(ids)

    async def update_metrics(self) -> None:
        db = await self._connect_db()
        row = await (
            await db.execute(
                "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
                " FROM numbering_outboxevent WHERE published_at IS NULL"
            )
        ).fetchone()
        if row:
            PENDING.set(int(row[0]))
            OLDEST_AGE.set(float(row[1]))

    # --- the loop -------------------------------------------------------------------------

    async def cycle(self) -> bool:
        """One pass over the owned partitions; True when some partition had a full batch."""
        now = time.monotonic()
        if now - self._last_rebalance >= 1.0:
            await self.rebalance()
            self._last_rebalance = now
        busy = False
        for partition in sorted(self.owned):
            if self._backoff_until.get(partition, 0) > time.monotonic():
                continue
            if await self.publish_partition(partition) >= self.config.batch:
                busy = True
        if time.monotonic() - self._last_metrics >= 1.0:
            await self.update_metrics()
            self._last_metrics = time.monotonic()
        return busy

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(self._listen(stop))
        connector = asyncio.create_task(self._connect_nats(stop))
        db_delay = 0.5
        try:
            while not stop.is_set():
                self._wake.clear()
                busy = False
                try:
                    busy = await self.cycle()
                    db_delay = 0.5
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    log.warning("outbox relay: PostgreSQL connection lost (%r); reconnecting", exc)
                    await self._drop_db()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), db_delay)
                    # A failover is over in ~20 s (ADR 1400); retrying a refused or read-only
                    # connection costs little, and a 10 s cap added up to 10 s to the drain.
                    db_delay = min(db_delay * 2, 2.0)
                    continue
                if busy:
                    continue
                waits = [t for t in self._backoff_until.values() if t > time.monotonic()]
                timeout = self.config.poll_seconds
                if waits:
                    timeout = max(min(timeout, min(waits) - time.monotonic()), 0.05)
                wake: asyncio.Task[Any] = asyncio.create_task(self._wake.wait())
                stopped: asyncio.Task[Any] = asyncio.create_task(stop.wait())
                await asyncio.wait({wake, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for task in (wake, stopped):
                    task.cancel()
        finally:
            for task in (listener, connector):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self._nc is not None:
                with contextlib.suppress(Exception):
                    await self._nc.close()
            await self._drop_db()
            log.info("outbox relay %s stopped (%d published)", self.config.name, self.published)
