from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from prometheus_client import start_http_server

from core.tracing import setup_tracing
from numbering.cache_sync import CacheSync


class Command(BaseCommand):
    help = (
        "Apply every committed number change to the Redis lease cache, retried until Redis takes it,"
        " and heartbeat the workers (ADR 1200). Run two or more: they share the queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=None, help="default: LEASE_CACHE_SYNC_BATCH")
        parser.add_argument(
            "--metrics-port", type=int, default=None, help="default: LEASE_CACHE_SYNC_METRICS_PORT (0 = off)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        setup_tracing("cache-sync")
        port = settings.LEASE_CACHE_SYNC_METRICS_PORT if options["metrics_port"] is None else options["metrics_port"]
        if port:
            start_http_server(port, addr=settings.METRICS_BIND_ADDRESS)
        sync = CacheSync(batch=options["batch"])
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: sync.stop())
        self.stdout.write(f"lease cache-sync: batch {sync.batch}, heartbeat every {sync.interval * 1000:.0f} ms")
        self.stdout.flush()
        sync.run()
