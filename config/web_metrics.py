"""The web process serves /metrics on its own bind, not on the public web port (issue 13
item 10): METRICS_BIND_ADDRESS:WEB_METRICS_PORT, like every background process. The public
URL /metrics is a 404 (config/urls.py no longer routes it).

django-prometheus keeps counting requests in the default registry; this server exports it,
plus the gauges read from PostgreSQL (numbering.observers, ADR 1502; the regulator export's
last success). Those live in a registry of their own, so nothing else that renders the
default registry touches the database, and a thread of their own reads them every
`WEB_METRICS_READ_SECONDS`: a scrape serves the last reading and never waits on PostgreSQL
(ADR 1506). Started once per process from config/wsgi.py (gunicorn's one worker per pod,
runserver).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from django.conf import settings
from django.db import close_old_connections, connection, connections
from prometheus_client import REGISTRY, CollectorRegistry, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
_started = threading.Lock()
_port: int | None = None
_readings: DatabaseReadings | None = None  # the running reader, once started


class _Everything(Collector):
    """The default registry, as one collector of the web server's registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


Read = Callable[[], Sequence[Metric]]


class DatabaseReadings(Collector):
    """Gauges read from PostgreSQL on a thread of their own, served from the last reading.

    A reading older than three read intervals is not served: no sample is better than a stale
    one that looks current. A database that does not answer therefore costs these gauges,
    never the scrape: Prometheus still gets every other metric of the process, and its `up`
    stays 1. (Before, one of them was read at scrape in every Django process. During the
    postgres-partition drill every target was down for the whole 90 s, so the alerts that
    page for the partition fired only after the heal.)"""

    def __init__(self, reads: dict[str, Read], interval: float) -> None:
        self._reads = reads
        self.interval = interval
        self._last: dict[str, tuple[float, Sequence[Metric]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        for name, read in self._reads.items():
            try:
                close_old_connections()
                families = read()
            except Exception as exc:  # noqa: BLE001 - a failed read is no reading; the thread lives on
                log.warning("metrics reading %s failed: %s", name, exc)
                with contextlib.suppress(Exception):
                    connection.close()
                continue
            self._last[name] = (time.monotonic(), families)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                self.refresh()
                self._stop.wait(max(self.interval - (time.monotonic() - started), 0.0))
        finally:
            connections.close_all()  # this thread's session goes with it

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="web-metrics-readings", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the reading thread and its database session (tests; a process just exits)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        for at, families in list(self._last.values()):
            if now - at <= 3 * self.interval:
                yield from families


def database_readings() -> DatabaseReadings:
    from exports.metrics import last_success_families
    from numbering.observers import overdue_families

    reads: dict[str, Read] = {
        "reservations_overdue": overdue_families,
        "regulator_export_last_success": last_success_families,
    }
    return DatabaseReadings(reads, float(settings.WEB_METRICS_READ_SECONDS))


def web_registry(readings: DatabaseReadings) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Everything())
    registry.register(readings)
    return registry


def start_web_metrics(port: int | None = None, addr: str | None = None) -> int | None:
    """Start the metrics server (idempotent); returns the port, None when off (port 0)."""
    from prometheus_client import start_http_server

    global _port, _readings
    port = settings.WEB_METRICS_PORT if port is None else port
    addr = settings.METRICS_BIND_ADDRESS if addr is None else addr
    with _started:
        if _port is not None or not port:
            return _port
        readings = database_readings()
        try:
            start_http_server(port, addr=addr, registry=web_registry(readings))
        except OSError as exc:  # a busy port must not stop the web process (or a script importing it)
            log.warning("web metrics NOT served: %s:%d: %s", addr, port, exc)
            return None
        readings.start()
        _port, _readings = port, readings
    log.info("web metrics on %s:%d/metrics", addr, port)
    return port
