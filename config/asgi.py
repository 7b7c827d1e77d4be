from __future__ import annotations

import os

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup(set_prefix=False)

from core.tracing import setup_tracing  # noqa: E402 - needs configured settings

# Before the handler loads its middleware: the Django instrumentation inserts its own.
setup_tracing("web")
application = ASGIHandler()
