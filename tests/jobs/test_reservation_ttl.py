"""Reservation TTL: Redis key after commit, the expiry listener, the safety net, extensions."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import errors
from core.actors import Actor
from core.rls import rls_scope
from events.expiry_listener import ReservationExpiryListener, enable_keyspace_notifications, expire_one
from numbering import jobs, reservation_ttl, services
from numbering.lifecycle import State
from numbering.models import Number
from tests.events.conftest import free_port, wait_for
from tests.numbering.helpers import number_in

OPS = Actor.user("ops.olga", roles=frozenset({"commerce.ops"}))


def _state(n: Number) -> tuple[str, Any]:
    with transaction.atomic(), rls_scope(platform=True):
        row = Number.objects.get(id=n.id)
        return row.state, row.reserved_until


@pytest.fixture
def listener(committed: Any) -> Iterator[ReservationExpiryListener]:
    stop = threading.Event()
    lst = ReservationExpiryListener(workers=2)
    thread = threading.Thread(target=lst.run, args=(stop,), daemon=True)
    thread.start()
    assert lst.ready.wait(5), "listener subscribed"
    yield lst
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


def test_reserve_writes_the_ttl_key_after_commit_and_a_rollback_writes_none(db: Any, alice: Any) -> None:
    r = reservation_ttl.client()
    n = number_in(State.AVAILABLE, alice)
    with transaction.atomic():
        result = services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=60)
        key = reservation_ttl.ttl_key(n.number, result.reservation["reservation_id"])
        assert not r.exists(key), "nothing before commit"
        transaction.set_rollback(True)
    # The test transaction never commits: on_commit hooks are dropped with the rollback.
    assert not r.exists(key)


def test_ttl_key_expires_at_reserved_until_and_an_extension_moves_it(committed: Any, alice: Any) -> None:
    r = reservation_ttl.client()
    with transaction.atomic(), rls_scope(platform=True):
        n = number_in(State.AVAILABLE, alice)
    result = services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=60)
    key = reservation_ttl.ttl_key(n.number, result.reservation["reservation_id"])
    assert 58_000 < r.pttl(key) <= 60_000
    services.number_extend_reservation(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=600)
    assert 598_000 < r.pttl(key) <= 600_000
    assert reservation_ttl.parse_key(key) == (n.number, result.reservation["reservation_id"])
    assert reservation_ttl.parse_key("other:key") is None
    assert reservation_ttl.parse_key(settings.RESERVATION_TTL_PREFIX + "+93|not-a-uuid") is None


def test_a_two_second_reservation_is_expired_by_the_listener(listener: ReservationExpiryListener, alice: Any) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        n = number_in(State.AVAILABLE, alice)
    services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=2)
    until = _state(n)[1]

    wait_for(lambda: _state(n)[0] == "AVAILABLE", 6, 0.02, "AVAILABLE again")

    # Never early; how close to the deadline (the ±2 s target) is bench/reservation_ttl's claim.
    late = (timezone.now() - until).total_seconds()
    assert late >= -0.05, f"expired {-late:.3f}s before reserved_until"
    # The listener records its outcome after the commit this test just saw, so wait for it.
    wait_for(lambda: "expired" in {o for _, o in listener.handled}, 2, 0.02, "the listener's own outcome")


def test_with_the_listener_stopped_the_safety_net_expires_it(committed: Any, alice: Any, fake_clock: Any) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        n = number_in(State.AVAILABLE, alice)
    services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=1)
    assert jobs.reservations_expire_overdue().counts == {}  # not due yet: nothing to do
    fake_clock.advance(1.3)
    assert _state(n)[0] == "RESERVED"  # nobody listening

    result = jobs.reservations_expire_overdue()

    assert result.counts == {"expired": 1} and result.extra["lag_seconds"] > 0.2
    assert _state(n)[0] == "AVAILABLE"


def test_a_reservation_extended_before_expiry_is_not_expired(committed: Any, alice: Any, fake_clock: Any) -> None:
    r = reservation_ttl.client()
    with transaction.atomic(), rls_scope(platform=True):
        n = number_in(State.AVAILABLE, alice)
    result = services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=2)
    key = reservation_ttl.ttl_key(n.number, result.reservation["reservation_id"])
    fake_clock.advance(1.0)
    services.number_extend_reservation(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=3)
    until = _state(n)[1]
    assert until == fake_clock.now() + timedelta(seconds=3)
    assert r.execute_command("PEXPIRETIME", key) == int(until.timestamp() * 1000)  # the TTL key moved too

    fake_clock.advance(1.6)  # past the first deadline, before the new one
    with pytest.raises(errors.InvalidTransition):
        services.number_expire_reservation(number=n.number, reservation_id=result.reservation["reservation_id"])
    assert jobs.reservations_expire_overdue().counts == {}
    assert _state(n)[0] == "RESERVED"

    fake_clock.advance(1.5)  # past the new deadline
    assert jobs.reservations_expire_overdue().counts == {"expired": 1}
    assert _state(n)[0] == "AVAILABLE"


def test_an_event_that_fires_early_waits_for_the_deadline(committed: Any, alice: Any) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        n = number_in(State.AVAILABLE, alice)
    result = services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=1)
    rid = result.reservation["reservation_id"]

    called = timezone.now()
    assert expire_one(n.number, rid) == "expired"  # called ~1 s early: waits, then expires
    assert (timezone.now() - called).total_seconds() >= 0.5
    assert _state(n)[0] == "AVAILABLE"
    assert expire_one(n.number, rid) == "already_ended"
    assert expire_one("+93799999999", rid) == "unknown_number"


def test_an_old_reservations_event_does_not_expire_a_newer_reservation(committed: Any, alice: Any) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        n = number_in(State.AVAILABLE, alice)
    old = services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=60)
    services.number_release(number=n.number, actor=OPS)
    services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=60)

    assert expire_one(n.number, old.reservation["reservation_id"]) == "already_ended"
    assert _state(n)[0] == "RESERVED"


def test_far_future_deadline_means_extended(committed: Any, alice: Any) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        n = number_in(State.AVAILABLE, alice)
    result = services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS, ttl_seconds=60)
    assert expire_one(n.number, result.reservation["reservation_id"]) == "extended"
    assert _state(n)[0] == "RESERVED"


@pytest.fixture
def locked_down_redis() -> Iterator[redis.Redis]:
    """A private redis-server where CONFIG is disabled, as on some managed services."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--rename-command",
            "CONFIG",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: _pings(client), 10, what="private redis")
        yield client
    finally:
        proc.terminate()
        proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_keyspace_notifications_are_enabled_when_allowed_and_refusal_only_warns(
    locked_down_redis: redis.Redis, caplog: Any
) -> None:
    assert enable_keyspace_notifications(locked_down_redis) is False
    assert "safety net" in caplog.text
    shared = reservation_ttl.client()
    assert enable_keyspace_notifications(shared) is True
    flags = shared.config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert "E" in flags and ("x" in flags or "A" in flags)


def test_due_keys_are_touched_so_redis_expires_them_on_time_and_forgotten(committed: Any) -> None:
    r = reservation_ttl.client()
    rid = str(uuid.uuid4())
    assert reservation_ttl.write_ttl_key("+93780000001", rid, timezone.now() + timedelta(milliseconds=100))
    assert reservation_ttl.touch_due_keys(r) == 0  # not due yet
    time.sleep(0.2)
    assert reservation_ttl.touch_due_keys(r) == 1
    assert not r.exists(reservation_ttl.ttl_key("+93780000001", rid))
    assert r.zcard(reservation_ttl.deadlines_key()) == 0
