"""The long-running processes as `manage.py` commands: start, do their work, stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections, transaction

from core.models import OutboxEvent
from core.outbox import outbox_enqueue
from events.models import ProcessedMessage
from events.publishers import signed_headers
from tests.events.conftest import free_port, wait_for

pytestmark = pytest.mark.usefixtures("committed")


@pytest.fixture(autouse=True)
def _keep_sigterm_handler() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


class SigtermWhen:
    """SIGTERM this process once `condition` holds (the command under test runs in the main
    thread). Use as a context manager around the command: if the command returns or fails
    first, no signal is sent (a stray SIGTERM would end the whole test run)."""

    def __init__(self, condition: Callable[[], Any], metrics_port: int | None = None) -> None:
        self.condition, self.metrics_port = condition, metrics_port
        self.done = threading.Event()
        self.metrics = ""
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        try:
            wait_for(lambda: self.done.is_set() or self.condition(), 30, 0.05, "command did its work")
            if self.metrics_port and not self.done.is_set():
                url = f"http://127.0.0.1:{self.metrics_port}/metrics"
                self.metrics = urllib.request.urlopen(url, timeout=5).read().decode()  # noqa: S310
        finally:
            connections.close_all()  # this thread's session must not outlive the test
            if not self.done.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

    def __enter__(self) -> SigtermWhen:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(10)


def test_provision_streams_command_reports_each_stream_and_fails_loudly_without_nats(
    nats_server: Any, capsys: Any
) -> None:
    call_command("provision_streams", nats_url=nats_server.url)
    out = capsys.readouterr().out
    assert "unchanged stream NUMBERING" in out and "unchanged consumer COMPLIANCE/numbering-tenant-suspended" in out
    with pytest.raises(CommandError, match="provision_streams: NATS at nats://127.0.0.1:"):
        call_command("provision_streams", nats_url=f"nats://127.0.0.1:{free_port()}", dev=False)


def test_run_outbox_relay_publishes_serves_metrics_and_stops_on_sigterm(nats_server: Any) -> None:
    with transaction.atomic():
        for seq in range(1, 4):
            outbox_enqueue(event_type="numbering.test.step.v1", aggregate_id="+93795000001", data={}, sequence=seq)
    port = free_port()
    with SigtermWhen(lambda: not OutboxEvent.objects.filter(published_at__isnull=True).exists(), port) as watcher:
        call_command("run_outbox_relay", nats_url=nats_server.url, metrics_port=port)

    assert "numbering_outbox_pending_events" in watcher.metrics


def test_run_event_consumers_handles_a_message_and_stops_on_sigterm(nats_server: Any, alice: Any) -> None:
    body = json.dumps({"id": str(uuid.uuid4()), "tenant_id": str(alice.id)}).encode()
    headers = signed_headers(
        "tenant-service", settings.EVENT_PUBLISHER_KEYS["tenant-service"], "tenant.deleted.v1", body
    )
    nats_server.run(lambda js: js.publish("tenant.deleted.v1", body, headers=headers))
    with SigtermWhen(lambda: ProcessedMessage.objects.exists()):
        call_command("run_event_consumers", nats_url=nats_server.url, metrics_port=free_port())

    assert ProcessedMessage.objects.get().outcome == "applied"


def test_run_reservation_expiry_listener_starts_and_stops_on_sigterm() -> None:
    started = threading.Event()
    threading.Timer(1.0, started.set).start()
    with SigtermWhen(started.is_set):
        call_command("run_reservation_expiry_listener", workers=1, metrics_port=free_port())
