"""Serve the gRPC API (DESIGN §3.1): `python manage.py grpcserver [--workers N]`."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grpc_server import server


class Command(BaseCommand):
    help = "Serve NumberingService over gRPC (mTLS unless GRPC_INSECURE=1); SIGTERM drains and exits 0."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.GRPC_WORKERS or os.cpu_count() or 1,
            help="worker processes sharing the port (default: GRPC_WORKERS or the CPU count)",
        )
        parser.add_argument("--port", type=int, default=settings.GRPC_PORT, help="default: GRPC_PORT (50051)")
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.GRPC_METRICS_PORT,
            help="Prometheus port, 0 = off (default: GRPC_METRICS_PORT, 9464)",
        )
        parser.add_argument(
            "--empty", action="store_true", help="benchmark baseline: ValidateLease answers a constant, no lookup"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        workers, port = opts["workers"], opts["port"]
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        if workers > 1 and port == 0:
            raise CommandError("--port 0 cannot be shared by several workers; pick a port")
        options = server.ServerOptions.from_settings(port=port, empty=opts["empty"])
        if workers == 1:
            server.start_metrics(opts["metrics_port"])
            asyncio.run(server.run_worker(options))
            return
        manage = str(settings.BASE_DIR / "manage.py")
        argv = [manage, "grpcserver", "--port", str(port)] + (["--empty"] if opts["empty"] else [])
        code = server.supervise(
            workers=workers, argv=argv, metrics_port=opts["metrics_port"], grace_seconds=options.grace_seconds
        )
        if code:
            raise SystemExit(code)
