from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from prometheus_client import start_http_server

from core.tracing import setup_tracing
from events.natsurl import redacted
from events.relay import OutboxRelay, RelayConfig


class Command(BaseCommand):
    help = "Publish outbox rows to JetStream in per-partition order (run one or more; they share partitions)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--nats-url", default=None, help="default: NATS_RELAY_URL")
        parser.add_argument("--batch", type=int, default=None, help="default: OUTBOX_RELAY_BATCH")
        parser.add_argument(
            "--metrics-port", type=int, default=None, help="default: OUTBOX_RELAY_METRICS_PORT (0 = off)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        setup_tracing("relay")
        port = settings.OUTBOX_RELAY_METRICS_PORT if options["metrics_port"] is None else options["metrics_port"]
        if port:
            start_http_server(port, addr=settings.METRICS_BIND_ADDRESS)
        relay = OutboxRelay(RelayConfig.from_settings(nats_url=options["nats_url"], batch=options["batch"]))

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await relay.run(stop)

        logging.getLogger(__name__).info(
            f"outbox relay {relay.config.name}: {relay.config.partitions} partitions,"
            f" NATS {redacted(relay.config.nats_url)}"
        )
        asyncio.run(main())
