from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from prometheus_client import start_http_server

from core.tracing import setup_tracing
from events.consumers import ROUTES, EventConsumers
from events.natsurl import redacted


class Command(BaseCommand):
    help = (
        "Consume compliance.tenant.suspended.v1 and tenant.deleted.v1 (mark the tenant, recall its numbers) and"
        " tenant.created.v1 / tenant.updated.v1 (provision the tenant mirror)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--nats-url", default=None, help="default: NATS_CONSUMER_URL")
        parser.add_argument(
            "--metrics-port", type=int, default=None, help="default: EVENT_CONSUMERS_METRICS_PORT (0 = off)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        setup_tracing("consumers")
        port = settings.EVENT_CONSUMERS_METRICS_PORT if options["metrics_port"] is None else options["metrics_port"]
        if port:
            start_http_server(port, addr=settings.METRICS_BIND_ADDRESS)
        consumers = EventConsumers(options["nats_url"])

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await consumers.run(stop)

        logging.getLogger(__name__).info(f"event consumers on {', '.join(ROUTES)} at {redacted(consumers.nats_url)}")
        asyncio.run(main())
