"""Reservation expiry listener (DESIGN §5, ADR 0603): Redis ``expired`` events → expire at once.

Subscribes to ``__keyevent@<db>__:expired`` and, for reservation TTL keys, calls
``number_expire_reservation(number=..., reservation_id=...)`` on a small thread pool. The
service's CAS only fires while that reservation is still the active one and past
``reserved_until``. Redis may fire a few milliseconds before ``reserved_until`` (its clock
and PXAT rounding): the listener then waits for the deadline and tries again. Keyspace
events are fire-and-forget: whatever is lost (listener down, Redis restart) is expired by
the 30 s safety net, which the listener also runs once when it starts.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone
from prometheus_client import Counter, Histogram

from core import errors, redis_client
from core.actors import Actor
from core.logging import mask_number
from numbering import jobs, services
from numbering.lifecycle import State
from numbering.models import Number, Reservation
from numbering.reservation_ttl import parse_key, touch_due_keys

log = logging.getLogger(__name__)

ACTOR = Actor.system("reservation-expiry-listener")
MAX_EARLY_WAIT_SECONDS = 5.0  # an event this early means the deadline moved: the new key will fire
EVENTS = Counter("numbering_reservation_expiry_events_total", "Expired-key events handled, by outcome", ["outcome"])
DELAY = Histogram(
    "numbering_reservation_expiry_delay_seconds",
    "Seconds between reserved_until and the moment the listener made the number AVAILABLE",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)


def enable_keyspace_notifications(client: redis.Redis) -> bool:
    """Make sure expired events are published (flags E + x). Managed Redis may refuse
    CONFIG: then warn, and rely on the server being configured (or on the safety net)."""
    try:
        raw = client.config_get("notify-keyspace-events").get("notify-keyspace-events") or ""
        current: str = raw.decode() if isinstance(raw, bytes) else str(raw)
        has_expired = "x" in current or "A" in current
        if "E" in current and has_expired:
            return True
        wanted = "".join(sorted(set(current) | {"E", "x"}))
        client.config_set("notify-keyspace-events", wanted)
        log.info("reservation expiry listener: notify-keyspace-events set to %r (was %r)", wanted, current)
        return True
    except redis.ResponseError as exc:
        log.warning(
            "reservation expiry listener: cannot enable keyspace notifications (%s); set notify-keyspace-events "
            "to include 'Ex' on the server — until then only the 30 s safety net expires reservations",
            exc,
        )
        return False


def _still_reserved(number: str, reservation_id: str) -> Any:
    def read() -> Any:
        row = Number.objects.filter(number=number, state=State.RESERVED).values_list("id", "reserved_until").first()
        if row is None:
            return None
        active = (
            Reservation.objects.filter(number_id=row[0], status=Reservation.Status.ACTIVE)
            .values_list("id", flat=True)
            .first()
        )
        return row[1] if active is not None and str(active) == reservation_id else None

    return jobs.platform_read(read)


def expire_one(number: str, reservation_id: str, *, attempts: int = 5) -> str:
    """Expire the reservation if it is still the active one; outcome for metrics and tests."""
    for _ in range(attempts):
        try:
            result = services.number_expire_reservation(number=number, reservation_id=reservation_id, actor=ACTOR)
        except errors.NumberNotFound:
            return "unknown_number"
        except errors.InvalidTransition:
            until = _still_reserved(number, reservation_id)
            if until is None:
                return "already_ended"  # assigned, released, extended-then-ended, expired by the safety net
            wait = (until - timezone.now()).total_seconds()
            if wait > MAX_EARLY_WAIT_SECONDS:
                return "extended"  # the extension rewrote the key; it will fire at the new deadline
            time.sleep(max(wait, 0) + 0.005)
            continue
        reserved_until = _reserved_until_from(result)
        if reserved_until is not None:
            DELAY.observe(max((timezone.now() - reserved_until).total_seconds(), 0.0))
        jobs.RESERVATIONS_EXPIRED.labels("listener").inc()
        return "expired"
    return "gave_up"


def _reserved_until_from(result: services.MutationResult) -> Any:
    reservation = result.reservation or {}
    value = reservation.get("expires_at")
    return None if value is None else datetime.fromisoformat(value)


class ReservationExpiryListener:
    def __init__(self, redis_url: str | None = None, *, workers: int = 4) -> None:
        self.redis_url = redis_url or settings.REDIS_URL
        self.workers = workers
        self.handled: list[tuple[str, str]] = []  # (masked number, outcome)
        self.ready = threading.Event()

    def _handle(self, number: str, reservation_id: str) -> None:
        close_old_connections()
        try:
            outcome = expire_one(number, reservation_id)
        except Exception:  # noqa: BLE001 - one failure must not stop the listener; the safety net retries
            log.exception("reservation expiry for %s failed", mask_number(number))
            outcome = "error"
        finally:
            connections.close_all()  # pool threads must not keep idle sessions
        EVENTS.labels(outcome).inc()
        self.handled.append((mask_number(number), outcome))
        if outcome != "expired":
            log.info("reservation %s of %s: %s", reservation_id, mask_number(number), outcome)

    def run(self, stop: threading.Event) -> None:
        client = redis_client.new_client(self.redis_url, socket_connect_timeout=2, health_check_interval=30)
        db = int(client.connection_pool.connection_kwargs.get("db", 0))
        channel = f"__keyevent@{db}__:expired"
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="expiry") as pool:
            catch_up_done = False
            toucher = threading.Thread(target=self._touch_loop, args=(stop,), daemon=True, name="expiry-toucher")
            toucher.start()
            while not stop.is_set():
                pubsub = None
                try:
                    enable_keyspace_notifications(client)
                    pubsub = client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(channel)
                    log.info("reservation expiry listener subscribed to %s", channel)
                    self.ready.set()
                    if not catch_up_done:  # what expired while no listener was running
                        pool.submit(self._catch_up)
                        catch_up_done = True
                    while not stop.is_set():
                        message = pubsub.get_message(timeout=0.5)
                        if not message or message.get("type") != "message":
                            continue
                        parsed = parse_key(message["data"])
                        if parsed is not None:
                            pool.submit(self._handle, *parsed)
                except redis.RedisError as exc:
                    self.ready.clear()
                    log.warning("reservation expiry listener: Redis error (%r); resubscribing", exc)
                    stop.wait(1.0)
                finally:
                    if pubsub is not None:
                        try:
                            pubsub.close()
                        except redis.RedisError:
                            pass
            toucher.join(5)
        client.close()

    def _touch_loop(self, stop: threading.Event, interval: float = 0.05) -> None:
        """Every 50 ms, make Redis expire keys that are due (its own expiry is sampled)."""
        client = redis_client.new_client(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            while not stop.wait(interval):
                try:
                    touch_due_keys(client)
                except redis.RedisError as exc:
                    log.warning("reservation expiry listener: touching due keys failed (%r)", exc)
                    stop.wait(1.0)
        finally:
            client.close()

    def _catch_up(self) -> None:
        close_old_connections()
        try:
            jobs.reservations_expire_overdue()
        except Exception:  # noqa: BLE001 - the scheduled safety net will try again
            log.exception("reservation expiry listener: start-up catch-up failed")
        finally:
            connections.close_all()
