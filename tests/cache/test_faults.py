"""Issue 12: ValidateLease never outlives a committed change, through every fault (ADR 1200).

Each test runs the gRPC server (its worker's LeaseLookup and a cache-sync), a private
redis-server it may pause, kill or restart, and PostgreSQL. No timing assertions: waits
are generous polls; the latency bounds are measured in bench/cache_coherence.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.test import override_settings

from core import redis_client
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from numbering import cache_epoch, lease_cache, services
from numbering.cache_sync import CacheSync
from numbering.lease_lookup import TRUST_LOST
from numbering.lifecycle import State
from numbering.models import LeaseCacheChange, Number
from tests.cache.conftest import RedisProcess, eventually
from tests.conftest import owner_dsn, superuser_dsn
from tests.factories import NumberFactory
from tests.grpc_server.conftest import as_platform, subprocess_db_env
from tests.numbering.helpers import OPS, number_in

ROOT = Path(__file__).resolve().parents[2]
Reason = pb.ValidateLeaseResponse.Reason


def validate(stub: Any, number: str, tenant: Any) -> pb.ValidateLeaseResponse:
    return stub.ValidateLease(pb.ValidateLeaseRequest(number=number, tenant_id=str(tenant.id)), timeout=10)


def redis_state(server: RedisProcess, number: str) -> str | None:
    value = lease_cache.read_value(number, server.client())
    return None if value is None else value[2].get("state")


def pg_version(number: str) -> int:
    return as_platform(lambda: Number.objects.get(number=number).version)


def redis_matches_postgres(server: RedisProcess, number: str) -> bool:
    value = lease_cache.read_value(number, server.client())
    return value is not None and value[1] == cache_epoch.read() and value[0] == pg_version(number)


@pytest.fixture
def served(cache_redis: RedisProcess, start_server: Any, connect: Any) -> Any:
    server = start_server(redis_url=cache_redis.url)
    return server, connect(server)


def warm(stub: Any, number: str, tenant: Any) -> None:
    """Answered valid a few times: the entry sits in Redis and in the worker's local cache."""
    for _ in range(3):
        assert validate(stub, number, tenant).valid


# --- (1) Redis refuses or times out writes while a change commits ---------------------------
@pytest.mark.parametrize("change", ["recall", "release", "expire_lease", "quota_recall"])
def test_a_change_committed_while_redis_refuses_writes_reaches_the_cache_after(
    served: Any, cache_redis: RedisProcess, alice: Any, change: str, fake_clock: Any
) -> None:
    server, stub = served
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    warm(stub, n.number, alice)
    cache_redis.client().execute_command("CLIENT", "PAUSE", "3000", "WRITE")
    if change == "expire_lease":
        fake_clock.advance(40 * 86400)  # past the lease's end: the expiry job's turn
    if change == "recall":
        as_platform(lambda: services.number_recall(number=n.number, actor=OPS, reason="FRAUD", compliance=True))
    elif change == "release":
        as_platform(lambda: services.number_release(number=n.number, actor=OPS))
    elif change == "expire_lease":
        as_platform(lambda: services.number_expire_lease(number=n.number))
    else:  # a quota recall is a recall by the system actor
        as_platform(lambda: services.number_recall(number=n.number, actor=OPS, reason="QUOTA"))
    # During the pause: no heartbeat, so the worker answers from PostgreSQL (within the trust bound).
    assert eventually(lambda: not validate(stub, n.number, alice).valid), "stale valid=true during the pause"
    # After the pause: the durable path writes the change (the fast path's write was lost).
    assert eventually(lambda: redis_matches_postgres(cache_redis, n.number)), "the change never reached Redis"
    assert redis_state(cache_redis, n.number) != "ASSIGNED"
    assert eventually(lambda: server.worker.lookup.trusted)
    assert not validate(stub, n.number, alice).valid


def test_a_change_committed_while_redis_is_dead_reaches_it_after_restart(
    served: Any, cache_redis: RedisProcess, alice: Any
) -> None:
    """(1) killed Redis and (2) Redis restarted empty."""
    server, stub = served
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    warm(stub, n.number, alice)
    cache_redis.kill()
    as_platform(lambda: services.number_recall(number=n.number, actor=OPS, reason="FRAUD", compliance=True))
    assert not validate(stub, n.number, alice).valid  # PostgreSQL, Redis being down
    cache_redis.restart_empty()
    assert eventually(lambda: server.worker.lookup.trusted), "trust never came back after the restart"
    assert eventually(lambda: redis_matches_postgres(cache_redis, n.number))
    answer = validate(stub, n.number, alice)
    assert (answer.valid, answer.reason) == (False, Reason.Value("NOT_ASSIGNED"))
    assert LeaseCacheChange.objects.count() == 0


# --- (3) Redis restarted from an older snapshot ---------------------------------------------
def test_redis_restored_from_an_older_snapshot_is_not_trusted(
    served: Any, cache_redis: RedisProcess, alice: Any
) -> None:
    server, stub = served
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    warm(stub, n.number, alice)
    older = cache_redis.snapshot()  # the RDB holds the valid lease
    as_platform(lambda: services.number_recall(number=n.number, actor=OPS, reason="FRAUD", compliance=True))
    assert eventually(lambda: redis_matches_postgres(cache_redis, n.number))
    stop_cache_sync(server)  # so the stale entry stays put while we look at it
    cache_redis.restart_from(older)
    assert redis_state(cache_redis, n.number) == "ASSIGNED"  # the stale entry is back, looking current
    # Never valid: the worker distrusts a Redis incarnation the cache-sync has not resynced.
    answers = [validate(stub, n.number, alice).valid for _ in range(30) if not time.sleep(0.05)]
    assert not any(answers), answers
    start_cache_sync(server)
    assert eventually(lambda: redis_matches_postgres(cache_redis, n.number)), "the stale entry was not repaired"
    assert eventually(lambda: server.worker.lookup.trusted)
    assert not validate(stub, n.number, alice).valid


def stop_cache_sync(server: Any) -> None:
    server.cache_sync.stop()
    server._sync_thread.join(10)


def start_cache_sync(server: Any) -> None:
    server.cache_sync = CacheSync(interval=0.05, redis_url=server.options.redis_url)
    server._sync_thread = threading.Thread(target=server.cache_sync.run, name="test-cache-sync", daemon=True)
    server._sync_thread.start()


# --- (4) PostgreSQL restored from a backup: versions go backwards ---------------------------
def rewind(number: str, tenant: Any) -> None:
    """What a point-in-time restore does to one row: an older state, a lower version, and no
    trigger ever fired (the restore replays WAL; the cache hears nothing)."""
    with psycopg.connect(owner_dsn(), autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SELECT set_config('app.scope', 'platform', true)")  # row-level security
        cur.execute("ALTER TABLE numbering_number DISABLE TRIGGER lease_cache_enqueue")
        cur.execute("ALTER TABLE numbering_lease DISABLE TRIGGER lease_cache_enqueue")
        cur.execute(
            "UPDATE numbering_number SET state = 'AVAILABLE', tenant_id = NULL, version = version - 3"
            " WHERE number = %s",
            [number],
        )
        cur.execute(
            "UPDATE numbering_lease SET status = 'ENDED' WHERE number_id = (SELECT id FROM numbering_number"
            " WHERE number = %s)",
            [number],
        )
        cur.execute("ALTER TABLE numbering_number ENABLE TRIGGER lease_cache_enqueue")
        cur.execute("ALTER TABLE numbering_lease ENABLE TRIGGER lease_cache_enqueue")
        conn.commit()


def test_postgres_restored_from_a_backup_is_detected_by_the_epoch(
    served: Any, cache_redis: RedisProcess, alice: Any
) -> None:
    server, stub = served
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    warm(stub, n.number, alice)
    before = cache_epoch.read()
    rewind(n.number, alice)
    call_command("bump_cache_epoch", reason="test: PITR restore")  # the runbook's step
    assert cache_epoch.read() != before
    answers: list[Any] = []
    assert eventually(
        lambda: answers.append(validate(stub, n.number, alice)) or answers[-1].reason == Reason.Value("NOT_ASSIGNED")
    ), f"the newer, now-false entry was still served: {answers[-1]}"
    # Redis is repopulated for the new epoch with the (lower) version PostgreSQL holds now.
    assert eventually(lambda: redis_matches_postgres(cache_redis, n.number))


def test_a_redis_shared_with_another_database_is_never_trusted(
    served: Any, cache_redis: RedisProcess, alice: Any
) -> None:
    """The other database's writer stores its own (valid-looking) entry for our number, and
    its cache-sync heartbeats its own epoch: neither is believed."""
    server, stub = served
    n = as_platform(lambda: number_in(State.AVAILABLE, alice))
    assert validate(stub, n.number, alice).reason == Reason.Value("NOT_ASSIGNED")
    foreign = {
        "state": "ASSIGNED",
        "tenant_id": str(alice.id),
        "lease_id": str(uuid.uuid4()),
        "expires_at": "2099-01-01T00:00:00+00:00",
        "kind": "MSISDN",
        "operator_code": "X",
    }
    other = cache_redis.client()
    lease_cache.write_entry(n.number, 999, foreign, epoch="other-database", client=other, raise_errors=True)
    assert lease_cache.read_value(n.number, other)[1] == "other-database"
    for _ in range(20):
        answer = validate(stub, n.number, alice)
        assert not answer.valid and answer.reason == Reason.Value("NOT_ASSIGNED")
        time.sleep(0.05)


# --- (5) pub/sub of one worker killed, or a message lost ------------------------------------
def test_killed_pubsub_connection_stops_local_trust_at_once(served: Any, cache_redis: RedisProcess, alice: Any) -> None:
    """redis-py resubscribes a killed pub/sub connection silently (no error reaches the
    listener): whatever was published in between is lost. The worker must notice anyway."""
    server, stub = served
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    warm(stub, n.number, alice)
    lookup = server.worker.lookup
    assert eventually(lambda: n.number in lookup._local)
    cache_redis.client().execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    # No change, no validate: only the worker noticing the lost connection empties its cache.
    assert eventually(lambda: n.number not in lookup._local, timeout=5), "local entry outlived the lost channel"
    assert eventually(lambda: lookup.trusted)  # and trust comes back with the next heartbeat
    assert validate(stub, n.number, alice).valid


def test_a_lost_invalidation_is_detected_by_the_sequence_gap(
    served: Any, cache_redis: RedisProcess, alice: Any
) -> None:
    server, stub = served
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    warm(stub, n.number, alice)
    lookup = server.worker.lookup
    assert eventually(lambda: n.number in lookup._local)
    stop_cache_sync(server)  # only our messages from here on
    gaps = TRUST_LOST.labels("sequence_gap")
    before = gaps._value.get()
    client = cache_redis.client()
    client.incr(redis_client.lease_sequence_key())  # a message that never arrived
    assert lease_cache.heartbeat(client, cache_epoch.read()) > 0  # the next one shows the gap
    assert eventually(lambda: gaps._value.get() > before, timeout=5), "the gap went unnoticed"
    assert n.number not in lookup._local
    start_cache_sync(server)
    assert eventually(lambda: lookup.trusted)


# --- (6) the cache-sync process SIGKILLed mid-batch -----------------------------------------
def cache_sync_process(cache_redis: RedisProcess, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **subprocess_db_env(),
        "REDIS_URL": cache_redis.url,
        "LEASE_CACHE_SYNC_REDIS_TIMEOUT_MS": "10000",  # block inside the batch while Redis is paused
        "LEASE_CACHE_HEARTBEAT_MS": "50",
    }
    log = (tmp_path / "cache-sync.log").open("ab")
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "run_cache_sync", "--batch", "50", "--metrics-port", "0"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )


def test_cache_sync_killed_mid_batch_loses_nothing(
    committed: None, cache_redis: RedisProcess, alice: Any, tmp_path: Path
) -> None:
    # The test's own commits write their fast path elsewhere: only the cache-sync fills ours.
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{cache_redis.port}/1"):
        redis_client.reset()
        numbers = [as_platform(lambda: NumberFactory()).number for _ in range(120)]
        recalled = as_platform(lambda: number_in(State.ASSIGNED, alice))
        as_platform(lambda: services.number_recall(number=recalled.number, actor=OPS, reason="FRAUD"))
    redis_client.reset()
    queued = LeaseCacheChange.objects.count()
    assert queued >= 121
    cache_redis.client().execute_command("CLIENT", "PAUSE", "60000", "WRITE")
    process = cache_sync_process(cache_redis, tmp_path)
    try:
        # Mid-batch: it has locked a batch and is blocked writing it to the paused Redis.
        assert eventually(lambda: _locked_batch(), timeout=60), (
            "the cache-sync never started a batch: " + (tmp_path / "cache-sync.log").read_text()[-2000:] + _sessions()
        )
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert LeaseCacheChange.objects.count() == queued  # the batch rolled back: nothing lost
    cache_redis.client().execute_command("CLIENT", "UNPAUSE")
    process = cache_sync_process(cache_redis, tmp_path)
    try:
        assert eventually(lambda: LeaseCacheChange.objects.count() == 0, timeout=30)
        for number in [*numbers[:5], *numbers[-5:], recalled.number]:
            assert redis_matches_postgres(cache_redis, number), number
        assert redis_state(cache_redis, recalled.number) != "ASSIGNED"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def _sessions() -> str:
    with psycopg.connect(superuser_dsn(), autocommit=True) as conn:
        return str(conn.execute("SELECT datname, usename, state, left(query, 120) FROM pg_stat_activity").fetchall())


def _locked_batch() -> bool:
    """The app role's sessions are visible in full only to a superuser."""
    with psycopg.connect(superuser_dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
            " AND datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return bool(row and row[0])


# --- (7) a negative entry becomes known -----------------------------------------------------
def test_a_number_cached_as_unknown_is_known_once_imported(
    cache_redis: RedisProcess, start_server: Any, connect: Any, alice: Any
) -> None:
    with override_settings(LEASE_NEGATIVE_CACHE_SECONDS=300):  # so only an invalidation can help
        server = start_server(redis_url=cache_redis.url)
        stub = connect(server)
        number = "+93797777001"
        for _ in range(3):
            assert validate(stub, number, alice).reason == Reason.Value("UNKNOWN_NUMBER")
        assert eventually(lambda: number in server.worker.lookup._local)  # the negative entry
        as_platform(lambda: NumberFactory(number=number))  # what an import inserts
        assert eventually(lambda: validate(stub, number, alice).reason == Reason.Value("NOT_ASSIGNED")), (
            "the negative entry outlived the import"
        )


def test_bump_cache_epoch_needs_a_reason(committed: None) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="reason: required"):
        call_command("bump_cache_epoch", reason="  ")
