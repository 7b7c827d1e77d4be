"""The cache-first ValidateLease selector (DESIGN §3.1, ADR 0300).

Layers, fastest first:

1. an in-process dict per worker, trusted only while this process is subscribed to the
   `numbering:lease:invalidate` channel (every cache writer publishes every changed number
   there, so an entry is dropped within milliseconds of a commit) AND has heard a cache-sync
   heartbeat of its epoch within LEASE_CACHE_TRUST_MS AND has seen no gap in the channel's
   sequence (ADR 1200); for at most LEASE_LOCAL_CACHE_SECONDS even then;
2. Redis (`lease_cache`), under the same trust rule (an entry of another epoch is a miss),
   behind a circuit breaker: an error opens it for LEASE_REDIS_BREAKER_SECONDS and reads go
   straight to PostgreSQL;
3. PostgreSQL with a short statement timeout; the answer refills Redis through the
   version-guarded Lua write.

Whatever layer answered, the lease expiry is compared with the clock on every answer, so
a cached entry never yields valid=true past the lease's expires_at. When Redis has no
answer and PostgreSQL fails, the caller gets SERVICE_UNAVAILABLE (gRPC UNAVAILABLE; the
shipped client service config retries it).

WRONG_TENANT answers are counted per tenant per minute in Redis
(`numbering:anomaly:wrong_tenant:{tenant_id}:{unix_minute}`, 1 h TTL) for the anomaly
detector, batched by a background thread so the hot path only bumps a dict.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import Error as DatabaseError
from django.db import close_old_connections, connections, transaction
from prometheus_client import Counter

from core import clock, errors, redis_client
from core.db_wait import DatabaseThreads, DatabaseWaitExpired
from core.formats import normalize_number, parse_uuid
from core.logging import mask_number
from core.rls import rls_scope
from core.tenant_db import platform_role
from numbering import cache_epoch, lease_cache
from numbering.models import Lease, Number
from numbering.snapshots import cache_entry, number_snapshot

log = logging.getLogger(__name__)

OK = "OK"
UNKNOWN_NUMBER = "UNKNOWN_NUMBER"
NOT_ASSIGNED = "NOT_ASSIGNED"
WRONG_TENANT = "WRONG_TENANT"
LEASE_EXPIRED = "LEASE_EXPIRED"

_PENDING_MAX = 100_000
# CLIENT LIST shows whose connections these are (and the pool bound's test counts them).
REDIS_CLIENT_NAME = "numbering-lease-lookup"

CACHE_LOOKUPS = Counter(
    "numbering_lease_cache_lookups_total", "ValidateLease cache lookups by layer and outcome", ["layer", "outcome"]
)
DB_FALLBACKS = Counter("numbering_lease_db_fallbacks_total", "ValidateLease reads from PostgreSQL", ["reason"])
UNAVAILABLE = Counter("numbering_lease_lookup_unavailable_total", "ValidateLease answered UNAVAILABLE")
BREAKER_OPENED = Counter("numbering_lease_redis_breaker_opened_total", "Redis circuit breaker openings")
TRUST_LOST = Counter(
    "numbering_lease_cache_trust_lost_total",
    "Times a worker stopped trusting its local entries and Redis (ADR 1200)",
    ["reason"],
)
WRONG_TENANT_ANSWERS = Counter("numbering_validate_lease_wrong_tenant_total", "ValidateLease WRONG_TENANT answers")
ANOMALY_FLUSH_ERRORS = Counter("numbering_wrong_tenant_flush_errors_total", "Failed WRONG_TENANT counter flushes")


@dataclass(frozen=True, slots=True)
class Entry:
    """What we know about one number; state None = no such number (negative entry)."""

    version: int
    state: str | None
    tenant_id: str | None = None
    lease_id: str | None = None
    expires_at: int | None = None  # epoch microseconds (exact: a float would round them)
    kind: str = ""
    operator_code: str = ""
    stored_at: float = 0.0  # monotonic, for the local TTL


@dataclass(frozen=True, slots=True)
class LeaseAnswer:
    valid: bool
    reason: str
    source: str  # local | redis | db
    lease_id: str = ""
    expires_at: int | None = None  # epoch microseconds
    kind: str = ""
    operator_code: str = ""


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_micros(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)


def entry_from_cache(version: int, data: dict[str, Any], stored_at: float = 0.0) -> Entry:
    expires = data.get("expires_at")
    return Entry(
        version=version,
        state=data.get("state"),
        tenant_id=data.get("tenant_id"),
        lease_id=data.get("lease_id"),
        expires_at=epoch_micros(datetime.fromisoformat(expires)) if expires else None,
        kind=data.get("kind") or "",
        operator_code=data.get("operator_code") or "",
        stored_at=stored_at,
    )


def answer_for(entry: Entry | None, tenant_id: str, now: float, source: str) -> LeaseAnswer:
    """The decision, from whichever layer produced `entry`; expiry checked against `now`."""
    if entry is None or entry.state is None:
        return LeaseAnswer(False, UNKNOWN_NUMBER, source)
    if entry.state != "ASSIGNED" or not entry.lease_id:
        return LeaseAnswer(False, NOT_ASSIGNED, source, kind=entry.kind, operator_code=entry.operator_code)
    if entry.tenant_id != tenant_id:
        # No lease id or expiry for another tenant: they are not its business.
        return LeaseAnswer(False, WRONG_TENANT, source, kind=entry.kind, operator_code=entry.operator_code)
    if entry.expires_at is None or now * 1_000_000 >= entry.expires_at:
        return LeaseAnswer(
            False, LEASE_EXPIRED, source, entry.lease_id, entry.expires_at, entry.kind, entry.operator_code
        )
    return LeaseAnswer(True, OK, source, entry.lease_id, entry.expires_at, entry.kind, entry.operator_code)


def parse_tenant_id(value: str) -> str:
    if not value:
        raise errors.ValidationError("tenant_id: required (the tenant the message is sent for)", field="tenant_id")
    return str(parse_uuid(value, field="tenant_id"))


def read_from_db(number: str) -> Entry | None:
    """One number's lease facts from PostgreSQL, in platform scope, with a short statement
    timeout so a struggling database fails the call fast instead of queueing it."""
    alias = settings.LEASE_READ_ALIAS  # the read replica when DATABASE_REPLICA_URL is set
    with transaction.atomic(using=alias), rls_scope(platform=True, using=alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)", [f"{settings.LEASE_DB_STATEMENT_TIMEOUT_MS}ms"]
            )
        row = (
            Number.objects.using(alias)
            .filter(number=number)
            .values_list("id", "version", "state", "tenant_id", "kind", "issuer__code")
            .first()
        )
        if row is None:
            return None
        number_id, version, state, tenant_id, kind, operator_code = row
        lease = None
        if state == "ASSIGNED":
            lease = (
                Lease.objects.using(alias)
                .filter(number_id=number_id, status=Lease.Status.ACTIVE)
                .values_list("id", "expires_at")
                .first()
            )
    return Entry(
        version=version,
        state=state,
        tenant_id=str(tenant_id) if tenant_id else None,
        lease_id=str(lease[0]) if lease else None,
        expires_at=epoch_micros(lease[1]) if lease else None,
        kind=kind,
        operator_code=operator_code or "",
    )


def cache_payload(entry: Entry) -> dict[str, Any]:
    """The lease cache JSON for an entry read from PostgreSQL (numbering.snapshots' shape)."""
    return cache_entry(
        state=entry.state,
        tenant_id=entry.tenant_id,
        lease_id=entry.lease_id,
        expires_at=(EPOCH + timedelta(microseconds=entry.expires_at)).isoformat()
        if entry.expires_at is not None
        else None,
        kind=entry.kind,
        operator_code=entry.operator_code,
    )


class WrongTenantCounter:
    """Per-tenant, per-minute WRONG_TENANT counts, flushed to Redis in batches."""

    def __init__(self, redis_url: str, interval: float = 1.0) -> None:
        self._redis_url = redis_url
        self._interval = interval
        self._pending: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: redis.Redis | None = None

    def record(self, tenant_id: str, now: float) -> None:
        key = (tenant_id, int(now // 60))
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + 1
        WRONG_TENANT_ANSWERS.inc()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wrong-tenant-flush", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            if self._client is None:
                self._client = redis_client.new_client(self._redis_url, socket_timeout=1, socket_connect_timeout=1)
            pipe = self._client.pipeline(transaction=False)
            for (tenant_id, minute), count in batch.items():
                key = redis_client.anomaly_key("wrong_tenant", tenant_id, minute)
                pipe.incrby(key, count)
                pipe.expire(key, redis_client.ANOMALY_COUNTER_TTL_SECONDS)
            pipe.execute()
        except redis.RedisError as exc:
            ANOMALY_FLUSH_ERRORS.inc()
            with self._lock:
                # Bounded: an hour-long Redis outage must not eat the worker's memory.
                keep = len(self._pending) + len(batch) <= _PENDING_MAX
                if keep:
                    for pending_key, count in batch.items():
                        self._pending[pending_key] = self._pending.get(pending_key, 0) + count
            log.warning(
                "wrong-tenant counters not flushed (%d keys %s): %s",
                len(batch),
                "kept for the next try" if keep else "DROPPED, too many pending",
                exc,
            )
            return 0
        return len(batch)


_LOCAL_HITS = CACHE_LOOKUPS.labels("local", "hit")
_MEMO_MAX = 100_000


def _memo(memo: dict[str, str], raw: str, parsed: str) -> str:
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[raw] = parsed
    return parsed


class LeaseLookup:
    """One per worker process. `validate` runs on the event loop; PostgreSQL reads run on
    the process's database `threads` (the ORM is synchronous)."""

    def __init__(self, *, threads: DatabaseThreads, redis_url: str | None = None) -> None:
        self._redis_url = redis_url or settings.REDIS_URL
        self._threads = threads
        self._local: dict[str, Entry] = {}
        self._local_ttl = float(settings.LEASE_LOCAL_CACHE_SECONDS)
        self._negative_ttl = float(settings.LEASE_NEGATIVE_CACHE_SECONDS)
        self._max_entries = settings.LEASE_LOCAL_CACHE_MAX_ENTRIES
        self._breaker_seconds = float(settings.LEASE_REDIS_BREAKER_SECONDS)
        timeout = settings.LEASE_REDIS_TIMEOUT_MS / 1000
        self._aredis = redis_client.async_client(
            self._redis_url,
            timeout=timeout,
            max_connections=settings.LEASE_REDIS_MAX_CONNECTIONS,
            name=REDIS_CLIENT_NAME,
        )
        self._redis_open_until = 0.0
        # Invalidation bookkeeping: a fetch that started before an invalidation of its
        # number must not store what it read (it may predate the commit).
        self._subscribed = False
        # Trust (ADR 1200): local entries and Redis are used only until _trusted_until, which
        # each heartbeat of our epoch moves LEASE_CACHE_TRUST_MS ahead.
        self._trust_seconds = settings.LEASE_CACHE_TRUST_MS / 1000
        self._epoch_check_seconds = float(settings.LEASE_CACHE_EPOCH_CHECK_SECONDS)
        self._trusted_until = 0.0
        self._epoch: str | None = None
        self._epoch_read_at = 0.0
        self._last_seq: int | None = None
        self._generation = 0
        self._invalidated_at: dict[str, int] = {}
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        # The periodic epoch check reads PostgreSQL: on a thread of its own, so a database
        # that does not answer never holds up the heartbeats (ADR 1504, postgres-partition).
        self._epoch_thread: threading.Thread | None = None
        self.wrong_tenant = WrongTenantCounter(self._redis_url)
        self._numbers: dict[str, str] = {}
        self._tenants: dict[str, str] = {}

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.wrong_tenant.start()
        if self._local_ttl > 0 and self._listener is None:
            self._listener = threading.Thread(target=self._listen, name="lease-invalidation", daemon=True)
            self._listener.start()

    async def close(self) -> None:
        self._stop.set()
        self.wrong_tenant.stop()
        if self._listener is not None:
            self._listener.join(timeout=5)
        await self._aredis.aclose()

    @property
    def local_cache_active(self) -> bool:
        return self.trusted

    @property
    def trusted(self) -> bool:
        return self._subscribed and time.monotonic() < self._trusted_until

    def wait_trusted(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.trusted and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.trusted

    def wait_subscribed(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self._subscribed and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._subscribed

    # --- the hot path ------------------------------------------------------------------
    async def validate(self, number: str, tenant_id: str) -> LeaseAnswer:
        canonical, tenant = self._parse(number, tenant_id)
        answer, trusted = self._local_answer(canonical, tenant)
        if answer is not None:
            return answer
        entry, source = await self._fetch(canonical, trusted)
        return self._answer(entry, tenant, source)

    def answer_now(self, number: str, tenant_id: str) -> LeaseAnswer | None:
        """The answer of the trusted local cache, or None when it takes Redis or PostgreSQL.
        Synchronous, so a caller answering many items can skip a task for each hit (ADR
        1112); raises as `validate` does for a malformed number or tenant."""
        return self._local_answer(*self._parse(number, tenant_id))[0]

    def _parse(self, number: str, tenant_id: str) -> tuple[str, str]:
        # Callers send the same few forms of the same numbers and tenants over and over:
        # parsing them once per process takes regexes and UUID parsing off the hot path.
        canonical = self._numbers.get(number)
        if canonical is None:
            canonical = _memo(self._numbers, number, normalize_number(number))
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            tenant = _memo(self._tenants, tenant_id, parse_tenant_id(tenant_id))
        return canonical, tenant

    def _local_answer(self, canonical: str, tenant: str) -> tuple[LeaseAnswer | None, bool]:
        """The local cache's answer (None on a miss), and whether the caches are trusted now."""
        now = time.monotonic()
        trusted = self._subscribed and now < self._trusted_until
        entry = self._local.get(canonical) if trusted else None
        if entry is not None:
            ttl = self._local_ttl if entry.state is not None else self._negative_ttl
            if now - entry.stored_at < ttl:
                _LOCAL_HITS.inc()
                return self._answer(entry, tenant, "local"), trusted
        return None, trusted

    def _answer(self, entry: Entry | None, tenant: str, source: str) -> LeaseAnswer:
        now = clock.timestamp()  # the expiry check follows the one clock (tests step it)
        answer = answer_for(entry, tenant, now, source)
        if answer.reason == WRONG_TENANT:
            self.wrong_tenant.record(tenant, now)
        return answer

    async def _fetch(self, number: str, trusted: bool = True) -> tuple[Entry | None, str]:
        generation = self._generation
        epoch = self._epoch
        reason = "redis_down" if trusted else "untrusted"
        if trusted and time.monotonic() >= self._redis_open_until:
            try:
                raw = await self._aredis.get(redis_client.lease_key(number))
            except (redis.RedisError, OSError) as exc:
                self._open_breaker(exc)
            else:
                value = lease_cache.parse_value(raw) if raw is not None else None
                if value is not None and value[1] == epoch:
                    CACHE_LOOKUPS.labels("redis", "hit").inc()
                    entry = entry_from_cache(value[0], value[2], time.monotonic())
                    self._remember(number, entry, generation)
                    return entry, "redis"
                # Another epoch's entry (another database, or before a restore) is a miss.
                CACHE_LOOKUPS.labels("redis", "miss" if value is None else "foreign_epoch").inc()
                reason = "miss"
        DB_FALLBACKS.labels(reason).inc()
        fill = epoch if reason == "miss" else None
        # The statement timeout bounds a slow query; the wait bounds a database that does not
        # answer at all (a partition, a frozen server), and the caller's deadline bounds both
        # (core.db_wait; ADR 1504, ADR 1505).
        try:
            entry = await self._threads.run(
                settings.LEASE_DB_WAIT_MS / 1000, db_unit_of_work, read_and_fill, number, fill
            )
        except DatabaseWaitExpired as exc:
            UNAVAILABLE.inc()
            log.warning(
                "ValidateLease for %s: no cache entry and PostgreSQL gave no answer: %s", mask_number(number), exc
            )
            raise errors.ServiceUnavailable(
                "lease lookup unavailable: no cached answer and the database did not answer in time; retry"
            ) from None
        except DatabaseError as exc:
            UNAVAILABLE.inc()
            log.warning("ValidateLease for %s: no cache entry and PostgreSQL failed: %s", mask_number(number), exc)
            raise errors.ServiceUnavailable(
                "lease lookup unavailable: no cached answer and the database did not respond; retry"
            ) from None
        if entry is None:
            entry = Entry(version=0, state=None, stored_at=time.monotonic())
        else:
            entry = dataclasses.replace(entry, stored_at=time.monotonic())
        self._remember(number, entry, generation)
        return (entry if entry.state is not None else None), "db"

    def _open_breaker(self, exc: BaseException) -> None:
        CACHE_LOOKUPS.labels("redis", "error").inc()
        if time.monotonic() >= self._redis_open_until:
            BREAKER_OPENED.inc()
            log.warning("Redis lease cache failed (%s); reading PostgreSQL for %ss", exc, self._breaker_seconds)
        self._redis_open_until = time.monotonic() + self._breaker_seconds

    def _remember(self, number: str, entry: Entry, generation: int) -> None:
        if not self.trusted or self._invalidated_at.get(number, -1) > generation:
            return
        current = self._local.get(number)
        if current is not None and current.version > entry.version:
            return
        if len(self._local) >= self._max_entries:
            self._local.clear()
        self._local[number] = entry

    # --- invalidation ------------------------------------------------------------------
    def invalidate(self, number: str) -> None:
        self._generation += 1
        self._invalidated_at[number] = self._generation
        self._local.pop(number, None)
        if len(self._invalidated_at) > 100_000:
            self._reset_local()

    def _distrust(self, reason: str) -> None:
        """Stop using local entries and Redis until the next heartbeat of our epoch. The
        distrust takes effect before it is counted: whoever sees the count sees its effect."""
        was_trusted = bool(self._trusted_until)
        self._trusted_until = 0.0
        self._reset_local()
        if was_trusted:
            TRUST_LOST.labels(reason).inc()
            log.warning("lease cache not trusted (%s): answering from PostgreSQL until the next heartbeat", reason)

    def _refresh_epoch(self) -> None:
        close_old_connections()
        try:
            epoch = cache_epoch.read()
        except DatabaseError as exc:
            log.warning("lease cache epoch not read (%s); keeping the last one", exc)
            return
        finally:
            connections.close_all()  # the listener thread's own: one short read every few seconds
            self._epoch_read_at = time.monotonic()
        if epoch != self._epoch:
            previous, self._epoch = self._epoch, epoch  # first: a heartbeat of the old epoch no longer counts
            if previous is not None:
                self._distrust("epoch_changed")

    def _refresh_epoch_in_background(self) -> None:
        """The periodic check, unless the last one is still waiting on the database."""
        if self._epoch_thread is not None and self._epoch_thread.is_alive():
            return
        self._epoch_read_at = time.monotonic()  # the next check is due one period from now
        self._epoch_thread = threading.Thread(target=self._refresh_epoch, name="lease-epoch-check", daemon=True)
        self._epoch_thread.start()

    def on_message(self, data: bytes | str) -> None:
        """One message of the invalidation channel: "<seq>|n|<number>" or "<seq>|h|<epoch>"."""
        text = data.decode() if isinstance(data, bytes) else str(data)
        head, _, rest = text.partition("|")
        kind, _, payload = rest.partition("|")
        if not head.isdigit() or kind not in ("n", "h"):
            self.invalidate(text)  # a bare number (a writer from before ADR 1200)
            return
        seq = int(head)
        if self._last_seq is not None and seq != self._last_seq + 1:
            self._distrust("sequence_gap")  # a message was lost: anything local may be stale
        self._last_seq = seq
        if kind == "n":
            self.invalidate(payload)
            return
        if payload != self._epoch:
            # Another database's cache-sync on this Redis, or our epoch was bumped: re-read ours.
            self._distrust("foreign_epoch")
            self._epoch_read_at = 0.0
            return
        now = time.monotonic()
        if now >= self._trusted_until:
            self._reset_local()  # trust starts afresh: nothing fetched before counts
        self._trusted_until = now + self._trust_seconds

    def _reset_local(self) -> None:
        self._generation += 1
        floor = self._generation
        self._local.clear()
        # Anything fetched before now may predate a message we did not see: refuse it.
        self._invalidated_at = _Floor(floor)

    def _watch_reconnects(self, pubsub: Any) -> None:
        """redis-py reconnects and resubscribes a pub/sub connection silently (a `CLIENT KILL
        TYPE pubsub`, a network blip): messages of that window are lost without an error.
        Treat every reconnect after the first connect as a loss (ADR 1200)."""
        watch = _ReconnectWatch(self, pubsub.on_connect)
        pubsub._reconnect_watch = watch  # redis-py keeps connect callbacks as weak references
        pubsub.on_connect = watch.on_connect

    def _listen(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            client = redis_client.new_client(
                self._redis_url, socket_timeout=5, socket_connect_timeout=1, health_check_interval=2
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            self._watch_reconnects(pubsub)
            try:
                pubsub.subscribe(redis_client.lease_invalidation_channel(client))
                pubsub.get_message(timeout=1.0)  # the subscribe confirmation
                self._refresh_epoch()
                self._trusted_until = 0.0  # until the first heartbeat on this connection
                self._last_seq = None
                self._reset_local()
                self._subscribed = True
                backoff = 0.1
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.1)
                    if message and message.get("type") == "message":
                        self.on_message(message["data"])
                    if time.monotonic() - self._epoch_read_at >= self._epoch_check_seconds:
                        self._refresh_epoch_in_background()
            except (redis.RedisError, OSError) as exc:
                if self._subscribed:
                    log.warning("lease invalidation channel lost (%s); local lease cache off until resubscribed", exc)
            finally:
                self._subscribed = False
                self._trusted_until = 0.0
                self._local.clear()
                try:
                    pubsub.close()
                    client.close()
                except (redis.RedisError, OSError):
                    pass
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 2.0)


class _ReconnectWatch:
    def __init__(self, lookup: LeaseLookup, resubscribe: Callable[[Any], Any]) -> None:
        self.lookup = lookup
        self.resubscribe = resubscribe

    def on_connect(self, connection: Any) -> None:
        if self.lookup._subscribed:
            self.lookup._distrust("pubsub_reconnected")
            self.lookup._last_seq = None
        self.resubscribe(connection)


class _Floor(dict):
    """An invalidation map where every number counts as invalidated at `floor`."""

    def __init__(self, floor: int) -> None:
        super().__init__()
        self.floor = floor

    def get(self, key: Any, default: Any = None) -> Any:
        return max(super().get(key, self.floor), self.floor)


def read_and_fill(number: str, fill: str | None) -> Entry | None:
    """Read PostgreSQL; on a cache miss store the answer in Redis for epoch `fill`
    (version-guarded, so it never overwrites a newer entry written by a commit that raced us)."""
    entry = read_from_db(number)
    if fill and entry is not None:
        lease_cache.write_entry(number, entry.version, cache_payload(entry), publish=False, epoch=fill)
    return entry


def db_unit_of_work(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `fn` as one unit of work on a pooled thread, as Django's request cycle would: on
    the app role unless the caller entered tenant_role() (one connection per thread either
    way, ADR 1503)."""
    platform_role()
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


def number_detail(*, number: str) -> dict[str, Any]:
    """Lookup: one number with its active lease, as the services snapshot it."""
    canonical = normalize_number(number)
    with transaction.atomic(), rls_scope(platform=True):
        row = Number.objects.select_related("issuer").filter(number=canonical).first()
        if row is None:
            raise errors.NumberNotFound(f"number {canonical} not found", field="number")
        lease = Lease.objects.filter(number=row, status=Lease.Status.ACTIVE).first()
        return number_snapshot(row, lease)
