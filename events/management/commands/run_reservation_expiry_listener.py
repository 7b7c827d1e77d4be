from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from prometheus_client import start_http_server

from core.tracing import setup_tracing
from events.expiry_listener import ReservationExpiryListener


class Command(BaseCommand):
    help = "Expire reservations the moment their Redis TTL key expires (keyspace events; safety net covers misses)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, default=4, help="threads expiring reservations (default 4)")
        parser.add_argument(
            "--metrics-port", type=int, default=None, help="default: RESERVATION_EXPIRY_METRICS_PORT (0 = off)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        setup_tracing("expiry")
        port = settings.RESERVATION_EXPIRY_METRICS_PORT if options["metrics_port"] is None else options["metrics_port"]
        if port:
            start_http_server(port, addr=settings.METRICS_BIND_ADDRESS)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        listener = ReservationExpiryListener(workers=options["workers"])
        logging.getLogger(__name__).info(f"reservation expiry listener on {settings.REDIS_URL.rsplit('@', 1)[-1]}")
        listener.run(stop)
