"""The logs of the real processes, started the way `make run` and the image start them
(deploy/entrypoint.sh web | grpc | worker), scanned for any unmasked number.

Requests carry numbers in URL paths, query strings, bodies and gRPC messages (E.164,
national, 93-prefixed, URL-encoded), found and unknown numbers, errors included. Every line
each process writes must be JSON of the one shape (core.logging.LOG_FIELDS) and contain
no number in full. The captured lines are also the sample input of the Loki pipeline test
(tests/deploy/test_log_pipeline.py reads them through the `process_logs` fixture).
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from core.logging import LOG_FIELDS, find_unmasked_number
from tests.deploy.conftest import KNOWN, NOT_JSON_ALLOWED, PROCESSES, UNKNOWN


def raw_forms(number: str) -> set[str]:
    digits = number.removeprefix("+")
    national = "0" + digits[2:]
    persian = national.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    arabic_indic = ("00" + digits).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    typed = {persian, arabic_indic}  # issue 16: as people in Afghanistan type them
    return (
        {number, digits, national, digits[2:], urllib.parse.quote(number, safe="")}
        | typed
        | {urllib.parse.quote(t, safe="") for t in typed}
    )


def test_every_process_logged_something_including_the_access_log(process_logs: dict[str, list[str]]) -> None:
    for name in PROCESSES:
        assert process_logs[name], f"{name} wrote no log line"
    access = [json.loads(line) for line in process_logs["web"] if '"gunicorn.access"' in line]
    assert len(access) >= 20, "the access log is missing requests"
    assert {line["status"] for line in access} >= {200, 201, 404}


def test_every_line_is_json_of_the_one_shape(process_logs: dict[str, list[str]]) -> None:
    for name, lines in process_logs.items():
        for line in lines:
            if not line.strip() or line.strip() in NOT_JSON_ALLOWED:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"{name} wrote a line that is not JSON: {line[:300]}")
            assert tuple(record)[: len(LOG_FIELDS)] == LOG_FIELDS, f"{name}: {line[:300]}"
            assert record["process"] == name, line[:300]
            assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def test_no_line_of_any_process_contains_a_number_in_full(process_logs: dict[str, list[str]]) -> None:
    forms = raw_forms(KNOWN) | raw_forms(UNKNOWN)
    for name, lines in process_logs.items():
        for line in lines:
            leaked = {form for form in forms if form in line}
            assert not leaked, f"{name} logged {leaked}: {line[:300]}"
            assert not find_unmasked_number(line), f"{name} logged an unmasked number: {line[:300]}"
    web = "\n".join(process_logs["web"])
    assert "+93791****67" in web, "the scan must see the masked form of the numbers it sent"


def test_the_tenant_of_an_authenticated_request_is_on_its_lines(process_logs: dict[str, list[str]]) -> None:
    tenants = {json.loads(line)["tenant"] for line in process_logs["web"] if line.startswith("{")}
    assert tenants - {None}, "no web line names the tenant of a tenant request"
