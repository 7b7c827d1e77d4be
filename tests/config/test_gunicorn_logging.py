"""gunicorn's loggers in the service's JSON shape, with numbers masked (in process; the real
gunicorn is exercised by tests/deploy/test_process_logs.py)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from config.gunicorn_logging import JsonGunicornLogger
from core.logging import LOG_FIELDS


def make_logger() -> JsonGunicornLogger:
    """Built inside the test: the handler binds sys.stderr as capsys has replaced it."""
    cfg = Config()
    cfg.set("accesslog", "-")
    return JsonGunicornLogger(cfg)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]


def test_an_access_line_is_json_with_the_number_masked(capsys: pytest.CaptureFixture[str]) -> None:
    logger = make_logger()
    response = SimpleNamespace(status="404 Not Found", headers=[("X-Request-ID", "req-9")], sent=12)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/admin/v1/numbers/+93791234567/",
        "QUERY_STRING": "q=0791234567",
        "REMOTE_ADDR": "10.0.0.1",
        "numbering.tenant": "7d3c2f2e-0000-4000-8000-000000000001",
    }
    logger.access(response, None, environ, timedelta(milliseconds=12.5))
    (line,) = _lines(capsys)
    assert tuple(line)[: len(LOG_FIELDS)] == LOG_FIELDS
    assert line["logger"] == "gunicorn.access"
    assert line["message"] == "GET /api/admin/v1/numbers/+93791****67/?q=0791****67 404"
    assert (line["status"], line["duration_ms"], line["request_id"]) == (404, 12.5, "req-9")
    assert line["tenant"] == "7d3c2f2e-0000-4000-8000-000000000001"
    assert "93791234567" not in json.dumps(line) and "0791234567" not in json.dumps(line)


def test_error_lines_go_through_the_same_formatter_and_mask(capsys: pytest.CaptureFixture[str]) -> None:
    logger = make_logger()
    logger.error("worker died handling %s", "/numbers/0791234567")
    (line,) = _lines(capsys)
    assert (line["logger"], line["level"]) == ("gunicorn.error", "ERROR")
    assert line["message"] == "worker died handling /numbers/0791****67"
    assert logging.getLogger("gunicorn.error").propagate is False
