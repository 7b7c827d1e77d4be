"""Gunicorn's own log lines (gunicorn.error, gunicorn.access) in the service's JSON shape.

Gunicorn configures its two loggers itself, with plain-text handlers of its own that do not
propagate, so they bypassed core/logging.py: the access log wrote full numbers from URL
paths (`GET /api/admin/v1/numbers/+93791234567/`). This logger class (set in
gunicorn.conf.py, which gunicorn reads from the working directory even when the command line
does not name it) gives both loggers the one JSON handler with the masking filter, and writes
each access as a structured record whose path and query are masked like every message.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from gunicorn.glogging import Logger

from core.logging import JsonFormatter, MaskNumbersFilter, RequestIdFilter, mask_numbers_in


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(MaskNumbersFilter())
    return handler


class JsonGunicornLogger(Logger):
    def setup(self, cfg: Any) -> None:
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.access_log.setLevel(logging.INFO)
        for log in (self.error_log, self.access_log):
            log.handlers[:] = [json_handler()]
            log.propagate = False

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        path = mask_numbers_in(environ.get("PATH_INFO", ""))
        query = mask_numbers_in(environ.get("QUERY_STRING", ""))
        request_id = ""
        for name, value in getattr(resp, "headers", None) or []:
            if name.lower() == "x-request-id":
                request_id = value
        duration_ms = round(request_time.total_seconds() * 1000, 3)
        self.access_log.info(
            "%s %s %s",
            environ.get("REQUEST_METHOD", "-"),
            path + (f"?{query}" if query else ""),
            status,
            extra={
                "method": environ.get("REQUEST_METHOD", "-"),
                "path": path,
                "query": query,
                "status": int(status) if str(status).isdigit() else str(status),
                "bytes": getattr(resp, "sent", None),
                "duration_ms": duration_ms,
                "remote_addr": environ.get("REMOTE_ADDR", "-"),
                "user_agent": environ.get("HTTP_USER_AGENT", ""),
                "request_id": request_id,
                "tenant": environ.get("numbering.tenant", ""),
            },
        )
