"""The outbox relay: order, envelope, two relays, crash, NATS outage, a blocked partition."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from prometheus_client import REGISTRY

from core.actors import Actor
from core.models import OutboxEvent
from core.outbox import outbox_enqueue, partition_for
from core.rls import rls_scope
from numbering import services
from numbering.lifecycle import State
from tests.events.conftest import StreamMessage, stream_messages, wait_for
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.usefixtures("committed")

ENVELOPE_KEYS = {"id", "type", "source", "time", "subject", "tenant_id", "sequence", "data"}
OPS = Actor.user("ops.olga", roles=frozenset({"commerce.ops"}))


def pending() -> int:
    return OutboxEvent.objects.filter(published_at__isnull=True).count()


def enqueue(aggregates: list[str], rounds: range, subject: str | None = None) -> None:
    """One transaction per round: every aggregate gets its next sequence number."""
    for seq in rounds:
        with transaction.atomic():
            for agg in aggregates:
                outbox_enqueue(
                    event_type="numbering.test.step.v1",
                    aggregate_id=agg,
                    data={"step": seq},
                    sequence=seq,
                    subject=subject,
                )


def assert_in_order_exactly_once(messages: list[StreamMessage], expected_total: int) -> None:
    ids = [m.headers.get("Nats-Msg-Id") for m in messages]
    assert len(ids) == len(set(ids)) == expected_total, "every event exactly once"
    assert all(m.headers["Nats-Msg-Id"] == m.data["id"] for m in messages)
    by_aggregate: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        by_aggregate[m.data["subject"]].append(m.data["sequence"])
    for agg, seqs in by_aggregate.items():
        assert seqs == sorted(seqs), f"{agg} reordered: {seqs}"


def test_reserve_assign_release_arrive_on_numbering_in_order_with_the_envelope(
    nats_server: Any, relays: Any, alice: Any
) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        n = number_in(State.AVAILABLE, alice)
    services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS)
    services.number_assign(number=n.number, tenant_id=alice.id, actor=OPS)
    services.number_release(number=n.number, actor=OPS)
    relays(nats_server.url)

    wait_for(lambda: pending() == 0, what="outbox drained")
    messages = [m for m in stream_messages(nats_server) if m.data["subject"] == n.number]

    assert [m.subject for m in messages] == [
        "numbering.number.reserved.v1",
        "numbering.number.assigned.v1",
        "numbering.number.released.v1",
    ]
    for m in messages:
        assert set(m.data) == ENVELOPE_KEYS
        assert m.data["source"] == "numbering-service" and m.data["type"] == m.subject
        assert m.data["tenant_id"] == str(alice.id) and m.headers["Nats-Msg-Id"] == m.data["id"]
        assert "T" in m.data["time"] and m.data["data"]["number"] == n.number
    assert [m.data["sequence"] for m in messages] == sorted(m.data["sequence"] for m in messages)
    assert [m.data["data"]["state"] for m in messages] == ["RESERVED", "ASSIGNED", "QUARANTINED"]
    assert REGISTRY.get_sample_value("numbering_outbox_pending_events") == 0


def test_two_relays_at_once_both_work_and_never_reorder_an_aggregates_events(nats_server: Any, relays: Any) -> None:
    first = relays(nats_server.url, name="relay-a")
    second = relays(nats_server.url, name="relay-b")
    wait_for(lambda: first.relay.owned and second.relay.owned, what="both relays own partitions")
    aggregates = [f"+93790000{i:03d}" for i in range(40)]

    enqueue(aggregates, range(1, 16))

    wait_for(lambda: pending() == 0, what="outbox drained")
    # While the two share the partitions out, one may have let a partition go that the other
    # has not taken yet (seen in CI: 9 of 16 owned at the instant the outbox drained).
    wait_for(
        lambda: len(first.relay.owned | second.relay.owned) == settings.OUTBOX_PARTITIONS,
        what="every partition owned",
    )
    assert not (first.relay.owned & second.relay.owned), "a partition is owned by one relay at a time"
    assert first.relay.published > 0 and second.relay.published > 0, "both relays publish"
    assert_in_order_exactly_once(stream_messages(nats_server), 40 * 15)


def _relay_subprocess(nats_url: str, batch: int) -> subprocess.Popen[bytes]:
    cfg = settings.DATABASES["default"]
    url = f"postgres://{cfg['USER']}@{cfg['HOST']}:{cfg['PORT']}/{cfg['NAME']}"
    owner = settings.DATABASES["owner"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": url,
        "DATABASE_OWNER_URL": f"postgres://{owner['USER']}@{owner['HOST']}:{owner['PORT']}/{cfg['NAME']}",
        "DATABASE_TENANT_URL": "",  # derived from DATABASE_URL (the test database)
        "REDIS_URL": settings.REDIS_URL,
        "NATS_URL": nats_url,
        "OUTBOX_RELAY_BATCH": str(batch),
        "OUTBOX_RELAY_METRICS_PORT": "0",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "run_outbox_relay"],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_relay_killed_mid_batch_duplicates_nothing_and_loses_nothing(nats_server: Any, relays: Any) -> None:
    aggregates = [f"+93791000{i:03d}" for i in range(50)]
    enqueue(aggregates, range(1, 41))  # 2,000 events
    total = OutboxEvent.objects.count()

    proc = _relay_subprocess(nats_server.url, batch=400)
    try:
        wait_for(lambda: OutboxEvent.objects.filter(published_at__isnull=False).exists(), 60, 0.005, "first batch")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    marked = OutboxEvent.objects.filter(published_at__isnull=False).count()
    in_stream = len(stream_messages(nats_server))
    assert marked < total, "killed before the end"
    assert in_stream >= marked  # acked before marked, never the other way round

    relays(nats_server.url)
    wait_for(lambda: pending() == 0, 60, what="outbox drained by the next relay")

    assert_in_order_exactly_once(stream_messages(nats_server), total)
    if in_stream > marked:  # the usual case: the killed batch was acked but not marked
        assert REGISTRY.get_sample_value("numbering_outbox_duplicates_total") >= 1


def test_nats_down_mutations_succeed_backlog_grows_then_drains_in_order(
    nats_server: Any, relays: Any, alice: Any
) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        numbers = [number_in(State.AVAILABLE, alice) for _ in range(3)]
    relay = relays(nats_server.url, poll_seconds=0.2)
    services.number_reserve(number=numbers[0].number, tenant_id=alice.id, actor=OPS)
    wait_for(lambda: pending() == 0, what="first event published")

    nats_server.stop()
    for n in numbers:  # NATS is down: the business keeps working
        if n is not numbers[0]:
            services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS)
        services.number_assign(number=n.number, tenant_id=alice.id, actor=OPS)
    enqueue([n.number for n in numbers], range(100, 110))
    backlog = pending()
    assert backlog == 3 + 2 + 30

    wait_for(lambda: REGISTRY.get_sample_value("numbering_outbox_pending_events") == backlog, what="pending metric")
    wait_for(lambda: REGISTRY.get_sample_value("numbering_outbox_oldest_pending_age_seconds") >= 1.5, what="lag rises")
    # NATS being away is not the events' fault: no event is charged an attempt or backed off,
    # so the backlog drains as soon as the relay reconnects (the NATS-outage drill found a
    # 30 s tail when partitions backed off for the outage).
    assert not OutboxEvent.objects.filter(published_at__isnull=True, attempts__gt=0).exists()

    nats_server.start()
    back = time.monotonic()
    wait_for(lambda: pending() == 0, 60, what="backlog drained after NATS came back")
    assert time.monotonic() - back < 10

    assert_in_order_exactly_once(stream_messages(nats_server), OutboxEvent.objects.count())
    wait_for(
        lambda: REGISTRY.get_sample_value("numbering_outbox_oldest_pending_age_seconds") == 0, what="lag back to 0"
    )
    assert relay.relay.published == OutboxEvent.objects.count()


def test_a_failing_event_blocks_only_its_own_partition(nats_server: Any, relays: Any) -> None:
    blocked = "+93792000001"
    same_partition = next(
        f"+9379200{i:04d}" for i in range(2, 10000) if partition_for(f"+9379200{i:04d}") == partition_for(blocked)
    )
    other = next(
        f"+9379300{i:04d}" for i in range(10000) if partition_for(f"+9379300{i:04d}") != partition_for(blocked)
    )
    enqueue([blocked], range(1, 2), subject="nowhere.no.stream.v1")  # no stream takes this subject
    enqueue([same_partition, other], range(1, 3))
    relays(nats_server.url)

    wait_for(
        lambda: OutboxEvent.objects.filter(aggregate_id=other, published_at__isnull=False).count() == 2,
        what="other partition published",
    )
    wait_for(lambda: OutboxEvent.objects.filter(aggregate_id=blocked, attempts__gte=2).exists(), what="retried")
    assert not OutboxEvent.objects.filter(aggregate_id=same_partition, published_at__isnull=False).exists()
    assert OutboxEvent.objects.get(aggregate_id=blocked).last_error

    OutboxEvent.objects.filter(aggregate_id=blocked).update(subject="numbering.test.step.v1")  # operator fixes it
    wait_for(lambda: pending() == 0, what="partition unblocked")
    order = [m.data["subject"] for m in stream_messages(nats_server) if m.data["subject"] != other]
    assert order == [blocked, same_partition, same_partition]


def test_provision_streams_is_idempotent_and_updates_a_changed_limit(nats_server: Any) -> None:
    from events.streams import load_definitions, provision

    again = nats_server.provision()
    # 4 streams + 4 durable consumers (suspended, deleted, and the registry's created/updated)
    assert again.created == [] and again.updated == [] and len(again.unchanged) == 8

    defs = load_definitions()
    defs["streams"][0]["duplicate_window_seconds"] = 600
    changed = nats_server.run(lambda js: provision(js, include_dev=True, replicas=1, definitions=defs))
    assert changed.updated == ["stream NUMBERING"]
    info = nats_server.run(lambda js: js.stream_info("NUMBERING"))
    assert info.config.duplicate_window == 600 and info.config.subjects == ["numbering.>"]


def test_a_commit_wakes_the_relay_through_notify_without_waiting_for_the_poll(nats_server: Any, relays: Any) -> None:
    relay = relays(nats_server.url, poll_seconds=60)
    wait_for(lambda: relay.relay.owned, what="relay owns its partitions")
    time.sleep(0.3)  # the relay is now idle, waiting up to 60 s
    started = time.monotonic()
    enqueue(["+93794000001"], range(1, 2))
    wait_for(lambda: pending() == 0, 5, what="published on NOTIFY")
    assert time.monotonic() - started < 2


def test_provision_without_dev_streams_skips_them_and_their_consumers_and_updates_a_consumer() -> None:
    from events.streams import load_definitions, provision
    from tests.events.conftest import NatsServer

    server = NatsServer()
    server.start()
    try:
        report = server.run(lambda js: provision(js, include_dev=False, replicas=1))
        assert report.created == ["stream NUMBERING", "stream FRAUD_SIGNALS"]
        assert "stream COMPLIANCE (dev only)" in report.skipped
        assert "consumer TENANT/numbering-tenant-deleted (stream missing)" in report.skipped

        server.provision()
        defs = load_definitions()
        defs["consumers"][0]["ack_wait_seconds"] = 300
        changed = server.run(lambda js: provision(js, include_dev=True, replicas=1, definitions=defs))
        assert changed.updated == ["consumer COMPLIANCE/numbering-tenant-suspended"]
        info = server.run(lambda js: js.consumer_info("COMPLIANCE", "numbering-tenant-suspended"))
        assert info.config.ack_wait == 300
    finally:
        server.stop()
