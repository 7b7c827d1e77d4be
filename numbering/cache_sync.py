"""The durable lease-cache writer (ADR 1200): `manage.py run_cache_sync`.

Loop, every LEASE_CACHE_HEARTBEAT_MS and at every commit that queued a change (NOTIFY):
1. read the epoch from PostgreSQL (at most once per period);
2. drain `LeaseCacheChange` rows in id order, in batches: one statement locks a batch (FOR
   UPDATE SKIP LOCKED, so replicas share the work), deletes it and returns the numbers'
   *current* state; apply the version-guarded write + invalidation for each, then commit.
   Redis failing, or the process dying, anywhere before the commit rolls the batch back:
   the rows stay and are applied again (at least once; the version guard makes a repeat
   harmless);
3. publish a heartbeat (at most once per half period). The heartbeat script refuses (-1) when this Redis incarnation was
   not resynced for this epoch (Redis restarted empty or from a snapshot, or the epoch was
   bumped): then resync (drop every entry, record epoch|run_id) and heartbeat again.

Workers trust their local entries and Redis only for LEASE_CACHE_TRUST_MS after a heartbeat
of their epoch, so no heartbeat — Redis paused, killed, the cache-sync down or behind on an
error — means every answer comes from PostgreSQL within that bound.

PostgreSQL unreachable (refused) or silent (a partition: no database round trip answered for
three heartbeat periods) is the one case in which the loop heartbeats without draining:
nothing can commit then, so the cache is as current as the last drain left it, and the
workers keep answering from it (DESIGN §3.1; ADRs 1200, 1500, 1504). The passes run on a
database thread of their own so a silent database cannot stop the heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
    transaction,
)
from prometheus_client import Counter, Gauge

from core import redis_client
from core.rls import rls_scope
from numbering import cache_epoch, lease_cache
from numbering.lease_lookup import Entry, cache_payload, epoch_micros
from numbering.models import Lease, LeaseCacheChange, Number

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "numbering_lease_cache"  # the triggers of migration numbering 0006

SYNC_APPLIED = Counter("numbering_lease_cache_sync_applied_total", "Numbers written to Redis by the cache-sync")
SYNC_ERRORS = Counter("numbering_lease_cache_sync_errors_total", "Cache-sync loop failures (retried)", ["kind"])
SYNC_RESYNCS = Counter("numbering_lease_cache_resyncs_total", "Redis resyncs (new incarnation or epoch)")
SYNC_BACKLOG = Gauge("numbering_lease_cache_sync_backlog", "LeaseCacheChange rows waiting after the last drain")
SYNC_LAST_HEARTBEAT = Gauge("numbering_lease_cache_sync_last_heartbeat_timestamp", "Unix time of the last heartbeat")


def _entry_sql(source: str) -> str:
    """The lease facts of the numbers `source` yields (a query with a `number_id` column):
    the number, its operator and its active lease, one row per number (one active lease per
    number, a constraint). A number that no longer exists has no row."""
    issuer = Number._meta.get_field("issuer").related_model._meta.db_table  # type: ignore[union-attr]
    return (
        "SELECT n.id AS nid, n.number, n.version, n.state, n.tenant_id, n.kind, i.code, l.id AS lease_id, l.expires_at"
        f" FROM (SELECT DISTINCT number_id FROM {source}) q"
        f" JOIN {Number._meta.db_table} n ON n.id = q.number_id"
        f" LEFT JOIN {issuer} i ON i.id = n.issuer_id"
        f" LEFT JOIN {Lease._meta.db_table} l ON l.number_id = n.id AND n.state = 'ASSIGNED' AND l.status = 'ACTIVE'"
    )


def _entries(rows: list[tuple[Any, ...]]) -> dict[int, tuple[str, Entry]]:
    return {
        nid: (
            number,
            Entry(
                version=version,
                state=state,
                tenant_id=str(tenant_id) if tenant_id else None,
                lease_id=str(lease_id) if lease_id else None,
                expires_at=epoch_micros(expires) if lease_id else None,
                kind=kind,
                operator_code=operator_code or "",
            ),
        )
        for nid, number, version, state, tenant_id, kind, operator_code, lease_id, expires in rows
    }


# One batch of the queue, taken and deleted, with its numbers' current state: the count of
# rows consumed, then (left-joined, so the count comes back even when no number is left)
# one row per number.
DRAIN_SQL = (
    f"WITH batch AS (SELECT id FROM {LeaseCacheChange._meta.db_table} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED),"
    f" gone AS (DELETE FROM {LeaseCacheChange._meta.db_table} c USING batch WHERE c.id = batch.id"
    " RETURNING c.number_id)"
    f" SELECT consumed.n, e.* FROM (SELECT count(*) AS n FROM gone) consumed LEFT JOIN ({_entry_sql('gone')}) e ON true"
)


_READ_ENTRIES_SQL = _entry_sql("unnest(%s::bigint[]) AS ids(number_id)")


def read_entries(number_ids: list[int]) -> dict[int, tuple[str, Entry]]:
    """Current lease facts of these numbers (platform scope), by number id."""
    with connection.cursor() as cursor:
        cursor.execute(_READ_ENTRIES_SQL, [number_ids])
        return _entries(cursor.fetchall())


def repair(client: redis.Redis, epoch: str, *, sample: int | None) -> tuple[int, int]:
    """Compare Redis entries with PostgreSQL and rewrite every one that differs (forced: what
    PostgreSQL holds now wins; a commit racing us has its queued row, applied after). With
    `sample`, only the numbers most recently queued or changed; else every entry (a resync).
    Returns (entries checked, entries divergent)."""
    if sample is None:
        batches: Iterator[list[str]] = lease_cache.scan_numbers(client)
    else:
        batches = iter([recently_changed(sample)])
    checked = divergent = 0
    for numbers in batches:
        with transaction.atomic(), rls_scope(platform=True):
            ids = dict(Number.objects.filter(number__in=numbers).values_list("number", "id"))
            current = {number: entry for number, entry in read_entries(list(ids.values())).values()}
        for number in numbers:
            checked += 1
            value = lease_cache.read_value(number, client)
            entry = current.get(number)
            if entry is None:
                if value is not None and value[1] == epoch:
                    lease_cache.delete_entry(number, client=client)
                    divergent += 1
                continue
            payload = cache_payload(entry)
            if value is not None and value[1] == epoch and value[0] == entry.version and value[2] == payload:
                continue
            if value is None and sample is not None:
                continue  # not cached: nothing to diverge (a miss reads PostgreSQL)
            lease_cache.write_entry(
                number, entry.version, payload, epoch=epoch, client=client, raise_errors=True, force=True
            )
            divergent += 1
    return checked, divergent


def recently_changed(sample: int) -> list[str]:
    """The `sample` numbers changed most recently (state_changed_at), for the reconciler."""
    with transaction.atomic(), rls_scope(platform=True):
        return list(Number.objects.order_by("-state_changed_at", "-id").values_list("number", flat=True)[:sample])


RECONCILE_CHECKED = Counter(
    "numbering_lease_cache_reconciled_total", "Lease cache entries the reconciler compared with PostgreSQL"
)
RECONCILE_DIVERGENT = Counter(
    "numbering_lease_cache_divergent_total",
    "Lease cache entries that differed from PostgreSQL and were rewritten by the reconciler",
)


def reconcile(sample: int | None = None, *, redis_url: str | None = None) -> tuple[int, int]:
    """The reconciler job: compare the most recently changed numbers' Redis entries with
    PostgreSQL, repair what differs, count it. With the cache-sync healthy this finds
    nothing; anything it finds is a bug or an unplanned fault (alert LeaseCacheDivergent)."""
    client = redis_client.new_client(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        checked, divergent = repair(client, cache_epoch.read(), sample=sample or settings.LEASE_CACHE_RECONCILE_SAMPLE)
    finally:
        client.close()
    RECONCILE_CHECKED.inc(checked)
    RECONCILE_DIVERGENT.inc(divergent)
    if divergent:
        log.warning("lease cache reconciler: %d of %d entries differed from PostgreSQL (repaired)", divergent, checked)
    return checked, divergent


class CacheSync:
    def __init__(
        self, *, batch: int | None = None, interval: float | None = None, redis_url: str | None = None
    ) -> None:
        self.redis_url = redis_url or settings.REDIS_URL
        self.batch = batch or settings.LEASE_CACHE_SYNC_BATCH
        self.interval = interval if interval is not None else settings.LEASE_CACHE_HEARTBEAT_MS / 1000
        self.stop_event = threading.Event()
        self._client: redis.Redis | None = None
        self._last_error = ""
        self._epoch: str | None = None
        self._epoch_read_at = 0.0
        self._heartbeat_at = 0.0
        self._listener: psycopg.Connection[Any] | None = None
        # The passes' database thread, and when a database round trip of it last answered.
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-sync-db")
        self._answered_at = time.monotonic()
        self.silent_after = 3 * self.interval

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            timeout = max(settings.LEASE_CACHE_SYNC_REDIS_TIMEOUT_MS / 1000, 0.05)
            self._client = redis_client.new_client(
                self.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        return self._client

    def drain_once(self, epoch: str, *, after_write: Any = None) -> int:
        """Apply one batch; returns how many queue rows it consumed. One statement takes the
        batch (in id order, SKIP LOCKED), deletes it and returns its numbers' current state;
        the delete commits only after every Redis write succeeded (an error rolls it back)."""
        with transaction.atomic(), rls_scope(platform=True), connection.cursor() as cursor:
            cursor.execute(DRAIN_SQL, [self.batch])
            rows = cursor.fetchall()
            self._answered_at = time.monotonic()
            consumed = int(rows[0][0])
            # Deleted numbers have no row: their number string is gone with them (entry ages out).
            entries = _entries([row[1:] for row in rows if row[1] is not None])
            for number_id in sorted(entries):
                number, entry = entries[number_id]
                lease_cache.write_entry(
                    number, entry.version, cache_payload(entry), epoch=epoch, client=self.client, raise_errors=True
                )
                SYNC_APPLIED.inc()
                if after_write is not None:
                    after_write(number)
        return consumed

    def tick(self) -> None:
        """One pass: epoch, drain everything queued, heartbeat (resync when refused).

        A pass runs at every heartbeat period and at every commit that queued a change (the
        NOTIFY), so under write load it runs tens of times a second. What a pass reads only
        for the heartbeat is read at most once per period (ADR 1200, 2026-12-02 amendment):
        the epoch is re-read when a period has passed since the last read, and a new one is
        heartbeated (resynced) in the same pass, so a bump reaches the workers within one
        period, as before; otherwise a heartbeat is sent when half a period has passed since
        the last one, so workers hear at least two per period whatever the load (trust lasts
        five). The drain itself never waits for either."""
        now, epoch, bumped = time.monotonic(), self._epoch, False
        if epoch is None or now - self._epoch_read_at >= self.interval:
            fresh = cache_epoch.read()
            bumped, epoch = fresh != epoch, fresh
            self._epoch, self._epoch_read_at, self._answered_at = fresh, now, time.monotonic()
        self._drain(epoch)
        if not bumped and time.monotonic() - self._heartbeat_at < self.interval / 2:
            return
        if lease_cache.heartbeat(self.client, epoch) < 0:
            checked, divergent = repair(self.client, epoch, sample=None)
            lease_cache.mark_synced(self.client, epoch)
            SYNC_RESYNCS.inc()
            log.warning(
                "lease cache resynced for epoch %s… (%d entries checked, %d rewritten from PostgreSQL)",
                epoch[:8],
                checked,
                divergent,
            )
            self._drain(epoch)
            lease_cache.heartbeat(self.client, epoch)
        self._heartbeat_at = time.monotonic()
        SYNC_LAST_HEARTBEAT.set(time.time())

    def _drain(self, epoch: str) -> None:
        """Everything queued, batch by batch. The backlog is counted only while there is one
        (a full batch came back); a partial batch means the queue was empty a moment ago."""
        while self.drain_once(epoch) >= self.batch:
            SYNC_BACKLOG.set(LeaseCacheChange.objects.count())
            if self.stop_event.is_set():
                return
        SYNC_BACKLOG.set(0)

    def _pass(self) -> None:
        """One tick, on the database thread (its Django connection lives there)."""
        close_old_connections()
        try:
            self.tick()
        except BaseException:
            close_old_connections()
            raise

    def _watched_pass(self) -> None:
        """Run a pass on the database thread; while it waits on a database that has not
        answered for `silent_after`, keep heartbeating as for an unreachable one. A pass that
        makes progress (answers keep coming) is never taken for silence. A stop waits for the
        pass (bounded by the statement and TCP timeouts), so nothing heartbeats after it."""
        future: Future[None] = self._db_thread.submit(self._pass)
        while True:
            try:
                return future.result(timeout=self.interval)
            except FutureTimeout:
                if time.monotonic() - self._answered_at >= self.silent_after:
                    if not self._last_error.startswith("database silent"):
                        self._failed("database silent", TimeoutError("no database round trip answered"))
                    self._heartbeat_without_database()

    def run(self) -> None:
        backoff = self.interval
        while not self.stop_event.is_set():
            try:
                self._watched_pass()
            except (redis.RedisError, OSError) as exc:
                self._failed("redis", exc)
                self._client = None  # a fresh connection after Redis comes back
                self.stop_event.wait(min(backoff, 1.0))
                backoff = min(backoff * 2, 1.0)
                continue
            except (OperationalError, InterfaceError) as exc:
                self._failed("database", exc)
                self._heartbeat_without_database()
                # Keep the heartbeat period while waiting for the next database attempt: a
                # worker trusts its caches for LEASE_CACHE_TRUST_MS after a heartbeat, and a
                # backoff as long as that let the trust lapse between heartbeats, so cached
                # leases were refused while PostgreSQL had no primary (postgres-failover drill).
                retry_at = time.monotonic() + min(backoff, 1.0)
                while not self.stop_event.wait(self.interval) and time.monotonic() < retry_at:
                    self._heartbeat_without_database()
                backoff = min(backoff * 2, 1.0)
                continue
            except DatabaseError as exc:
                self._failed("database", exc)
                self.stop_event.wait(min(backoff, 1.0))
                backoff = min(backoff * 2, 1.0)
                continue
            if self._last_error:
                log.info("lease cache-sync recovered")
                self._last_error = ""
            backoff = self.interval
            self._wait()
        self._db_thread.submit(connections.close_all).result(timeout=30)  # the database thread's
        self._db_thread.shutdown(wait=False)
        connections.close_all()
        if self._listener is not None:
            self._listener.close()  # this thread's connections (a thread's own, in tests)

    def _wait(self) -> None:
        """Until the next heartbeat is due, or sooner when a change commits (the triggers
        NOTIFY numbering_lease_cache at commit): the durable path's latency is not the
        heartbeat interval. Without LISTEN (an error), plain polling."""
        try:
            if self._listener is None or self._listener.closed:
                params = connections["default"].get_connection_params()
                self._listener = psycopg.connect(**params, autocommit=True)
                self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            for _ in self._listener.notifies(timeout=self.interval, stop_after=1):
                break
        except psycopg.Error as exc:
            if self._listener is not None:
                self._listener.close()
            self._listener = None
            log.debug("cache-sync LISTEN unavailable (%s); polling", exc)
            self.stop_event.wait(self.interval)

    def _heartbeat_without_database(self) -> None:
        """PostgreSQL unreachable: nothing can commit (ADR 1200), so the cache is as current as
        the last drain left it; keep the workers answering from it (ValidateLease survives a
        database outage from its caches, DESIGN §3.1)."""
        if self._epoch is None:
            return
        try:
            if lease_cache.heartbeat(self.client, self._epoch) >= 0:
                SYNC_LAST_HEARTBEAT.set(time.time())
        except (redis.RedisError, OSError):
            self._client = None

    def _failed(self, kind: str, exc: BaseException) -> None:
        SYNC_ERRORS.labels(kind).inc()
        text = f"{kind}: {exc}"
        if text != self._last_error:
            log.warning("lease cache-sync pass failed (%s); retrying", text)
        self._last_error = text

    def stop(self) -> None:
        self.stop_event.set()
