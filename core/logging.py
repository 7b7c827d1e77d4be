"""Structured JSON logs, with every phone number masked before it leaves the process."""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry import trace

from core.formats import ascii_digits
from core.request_context import get_request_id, get_tenant

# Python warnings (a library's DeprecationWarning, Celery's SecurityWarning) are log records
# too: through the handlers below they come out as JSON and masked, not as raw stderr text.
logging.captureWarnings(True)

# E.164 / 0093 / national / 93-prefixed Afghan mobile numbers, anywhere in a message, in
# any script's digits (issue 16: a Persian-digit number a caller typed is as personal as an
# ASCII one). `\d` is Unicode here on purpose; a candidate run is read as ASCII to decide.
_DIGIT_RUN_RE = re.compile(r"(?<![\d+])\+?\d{9,13}(?!\d)")
_AF_MOBILE_RE = re.compile(r"(?:\+93|0093|93|0)?7[0-9]{8}")


def mask_number(value: str) -> str:
    """+93791234567 -> +93791****67; short codes keep their first digit (4040 -> 4***)."""
    if len(value) >= 10:
        return value[:-6] + "****" + value[-2:]
    if len(value) <= 1:
        return "*"
    return value[0] + "*" * (len(value) - 1)


def _mask_if_number(match: re.Match[str]) -> str:
    run = match.group(0)
    return mask_number(run) if _AF_MOBILE_RE.fullmatch(ascii_digits(run)) else run


# A URL in an access log carries what the caller typed percent-encoded: `%2B93…`, or, typed in
# Persian or Arabic-Indic digits, `%DB%B0%DB%B7…` — no digit for the pattern above to see.
_ENCODED_RUN_RE = re.compile(r"[0-9]*%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2}|[0-9])*")


def _mask_if_encoded_number(match: re.Match[str]) -> str:
    run = match.group(0)
    decoded = urllib.parse.unquote(run)
    masked = _DIGIT_RUN_RE.sub(_mask_if_number, decoded)
    return masked if masked != decoded else run


_PASSES = ((_DIGIT_RUN_RE, _mask_if_number), (_ENCODED_RUN_RE, _mask_if_encoded_number))


def mask_numbers_in(text: str) -> str:
    for pattern, mask in _PASSES:
        text = pattern.sub(mask, text)
    return text


def find_unmasked_number(text: str) -> str | None:
    """The first Afghan mobile number in `text` that is not masked (tests of every log and span)."""
    for pattern, mask in _PASSES:
        for match in pattern.finditer(text):
            if mask(match) != match.group(0):
                return match.group(0)
    return None


class MaskNumbersFilter(logging.Filter):
    """Last line of defence: masks numbers even where a caller forgot to."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not kill logging
            return True
        masked = mask_numbers_in(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = get_request_id()
        return True


_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "trace_id",
    "span_id",
    "tenant",
    "caller",
    "process_name",
}

# Every line of every process has these keys, in this order (null when unknown), so one
# parser (deploy/logging/) reads them all. `process` is the Procfile name the entrypoint
# exports (web, grpc, worker, ...), `caller` the code that logged (path:line).
LOG_FIELDS = ("time", "level", "logger", "message", "process", "request_id", "trace_id", "caller", "tenant")
_PROCESS = os.environ.get("NUMBERING_PROCESS", "") or None
_ROOT = str(Path(__file__).resolve().parent.parent) + os.sep


def _caller(record: logging.LogRecord) -> str:
    path = record.pathname
    if path.startswith(_ROOT):
        path = path[len(_ROOT) :]
    elif "site-packages" + os.sep in path:
        path = path.split("site-packages" + os.sep, 1)[1]
    return f"{path}:{record.lineno}"


# Extras of these types go out as they are; anything else (strings, but also objects such as
# the WSGIRequest Django puts on its request log records) as its masked text.
_JSON_SCALARS = (bool, int, float, type(None))


def _masked_extra(value: object) -> object:
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.loads(mask_numbers_in(json.dumps(value, default=str)))
    return mask_numbers_in(str(value))


def _masked_text(value: object) -> str | None:
    """A field of the fixed shape: its text with numbers masked, or null."""
    return mask_numbers_in(str(value)) if value else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = getattr(record, "trace_id", None), getattr(record, "span_id", None)
        if not trace_id:
            span_context = trace.get_current_span().get_span_context()
            if span_context.is_valid:
                trace_id, span_id = format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": getattr(record, "process_name", None) or _PROCESS,
            "request_id": _masked_text(getattr(record, "request_id", "") or get_request_id()),
            "trace_id": trace_id or None,
            "caller": _caller(record),
            "tenant": _masked_text(getattr(record, "tenant", "") or get_tenant()),
        }
        if trace_id:
            payload["span_id"] = span_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = _masked_extra(value)
        if record.exc_info:
            payload["exc"] = mask_numbers_in(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)
