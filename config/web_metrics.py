"""The web process serves /metrics on its own bind, not on the public web port (issue 13
item 10): METRICS_BIND_ADDRESS:WEB_METRICS_PORT, like every background process. The public
URL /metrics is a 404 (config/urls.py no longer routes it).

django-prometheus keeps counting requests in the default registry; this server exports it,
plus the gauges read from PostgreSQL at scrape (numbering.observers, ADR 1502), which live in
a registry of their own so that nothing else that renders the default registry queries the
database. Started once per process from config/wsgi.py (gunicorn's one worker per pod, runserver).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
_started = threading.Lock()
_port: int | None = None


class _Everything(Collector):
    """The default registry, as one collector of the web server's registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def web_registry() -> CollectorRegistry:
    from numbering.observers import OverdueReservationsCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Everything())
    registry.register(OverdueReservationsCollector())
    return registry


def start_web_metrics(port: int | None = None, addr: str | None = None) -> int | None:
    """Start the metrics server (idempotent); returns the port, None when off (port 0)."""
    from prometheus_client import start_http_server

    global _port
    port = settings.WEB_METRICS_PORT if port is None else port
    addr = settings.METRICS_BIND_ADDRESS if addr is None else addr
    with _started:
        if _port is not None or not port:
            return _port
        try:
            start_http_server(port, addr=addr, registry=web_registry())
        except OSError as exc:  # a busy port must not stop the web process (or a script importing it)
            log.warning("web metrics NOT served: %s:%d: %s", addr, port, exc)
            return None
        _port = port
    log.info("web metrics on %s:%d/metrics", addr, port)
    return port
