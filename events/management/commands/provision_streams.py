from __future__ import annotations

import asyncio
from typing import Any

import nats
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.natsurl import redacted
from events.streams import provision


class Command(BaseCommand):
    help = "Create or update the JetStream streams and durable consumers of deploy/nats/streams.json (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--nats-url", default=None, help="default: NATS_OPS_URL")
        dev = parser.add_mutually_exclusive_group()
        dev.add_argument("--dev", dest="dev", action="store_true", default=None, help="also COMPLIANCE/TENANT")
        dev.add_argument("--no-dev", dest="dev", action="store_false", help="only the streams we own")

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["nats_url"] or settings.NATS_OPS_URL

        async def run() -> list[str]:
            async def quiet(exc: Exception) -> None:
                return None

            # nats-py retries an initial connect forever: bound it ourselves.
            nc = await asyncio.wait_for(
                nats.connect(url, connect_timeout=2, allow_reconnect=False, error_cb=quiet), timeout=5
            )
            try:
                report = await provision(nc.jetstream(), include_dev=options["dev"])
            finally:
                await nc.close()
            return report.lines()

        try:
            lines = asyncio.run(run())
        except Exception as exc:  # noqa: BLE001 - any failure is reported with the URL
            raise CommandError(f"provision_streams: NATS at {redacted(url)} failed: {exc!r}") from exc
        for line in lines:
            self.stdout.write(line)
