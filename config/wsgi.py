from __future__ import annotations

import os

import django
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup(set_prefix=False)

from core.tracing import setup_tracing  # noqa: E402 - needs configured settings

# Before the handler loads its middleware: the Django instrumentation inserts its own.
setup_tracing("web")
application = WSGIHandler()

from config.web_metrics import start_web_metrics  # noqa: E402 - needs configured settings

start_web_metrics()  # /metrics on METRICS_BIND_ADDRESS:WEB_METRICS_PORT, not the public port
