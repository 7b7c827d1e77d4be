"""The foundation's fail-loudly env helpers and the log masking (added by issue 3 to keep the
suite's coverage gate honest; they are pure functions)."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_str, parse_database_url
from core.logging import JsonFormatter, MaskNumbersFilter, RequestIdFilter, mask_number
from core.request_context import request_id_scope


def test_env_str_requires_a_value_without_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_TEST_STR", raising=False)
    with pytest.raises(ImproperlyConfigured, match="X_TEST_STR is required"):
        env_str("X_TEST_STR")
    assert env_str("X_TEST_STR", "d") == "d"
    monkeypatch.setenv("X_TEST_STR", "v")
    assert env_str("X_TEST_STR") == "v"


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False), ("", False)]
)
def test_env_bool_accepts_the_usual_spellings(monkeypatch: pytest.MonkeyPatch, raw: str, value: bool) -> None:
    monkeypatch.setenv("X_TEST_BOOL", raw)
    assert env_bool("X_TEST_BOOL") is value


def test_env_bool_refuses_anything_else_and_defaults_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_TEST_BOOL", raising=False)
    assert env_bool("X_TEST_BOOL", default=True) is True
    monkeypatch.setenv("X_TEST_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_TEST_BOOL='maybe' is not a boolean"):
        env_bool("X_TEST_BOOL")


def test_env_int_checks_type_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_TEST_INT", raising=False)
    assert env_int("X_TEST_INT", 7) == 7
    for raw, message in [("x", "is not an integer"), ("0", "below the minimum 1"), ("11", "above the maximum 10")]:
        monkeypatch.setenv("X_TEST_INT", raw)
        with pytest.raises(ImproperlyConfigured, match=message):
            env_int("X_TEST_INT", 5, minimum=1, maximum=10)
    monkeypatch.setenv("X_TEST_INT", "10")
    assert env_int("X_TEST_INT", 5, minimum=1, maximum=10) == 10


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "scheme must be"),
        ("postgres://u@h/", "database name is missing"),
        ("postgres://h/db", "user name is missing"),
        ("postgres://u@h:port/db", "port is not a number"),
    ],
)
def test_database_url_errors_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        parse_database_url("X_DB", url)


def test_database_url_parts() -> None:
    parsed = parse_database_url("X_DB", "postgresql://a%40b:p%3Aw@db.example:6543/name")
    assert (parsed["USER"], parsed["PASSWORD"], parsed["HOST"], parsed["PORT"], parsed["NAME"]) == (
        "a@b",
        "p:w",
        "db.example",
        "6543",
        "name",
    )
    assert parse_database_url("X_DB", "postgres://u@/db")["PORT"] == "5432"


def test_mask_number_keeps_only_a_prefix_and_the_last_digits() -> None:
    assert mask_number("+93791234567") == "+93791****67"
    assert mask_number("4040") == "4***"
    assert mask_number("4") == "*"


def test_json_log_lines_mask_numbers_and_carry_the_request_id() -> None:
    record = logging.makeLogRecord(
        {"msg": "reserved %s", "args": ("+93791234567",), "levelname": "INFO", "name": "t", "tenant": "0791234567"}
    )
    with request_id_scope("req-1"):
        assert MaskNumbersFilter().filter(record) and RequestIdFilter().filter(record)
    try:
        raise ValueError("boom for +93791234567")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "reserved +93791****67"
    assert line["request_id"] == "req-1"
    assert line["tenant"] == "0791****67"
    assert "+93791234567" not in line["exc"]


def test_a_broken_format_string_does_not_break_logging() -> None:
    record = logging.makeLogRecord({"msg": "%s %s", "args": ("only-one",)})
    assert MaskNumbersFilter().filter(record) is True


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to +93791234567 now", "to +93791****67 now"),
        ("national 0791234567", "national 0791****67"),
        ("intl 93791234567.", "intl 93791****67."),
        ("id 12793123456789 stays", "id 12793123456789 stays"),  # inside a longer digit run: not a number
        ("dialled 0093791234567", "dialled 0093791****67"),
        ("Persian ۰۷۹۱۲۳۴۵۶۷ typed", "Persian ۰۷۹۱****۶۷ typed"),
        ("Arabic-Indic +٩٣٧٩١٢٣٤٥٦٧", "Arabic-Indic +٩٣٧٩١****٦٧"),
        ("mixed +937۹1234567", "mixed +937۹1****67"),
        ("order 123456789012 stays", "order 123456789012 stays"),  # not an Afghan mobile number
        ("GET /numbers/%2B93791234567/", "GET /numbers/%2B93791****67/"),
        ("GET /n/?q=%DB%B0%DB%B7%DB%B9%DB%B1%DB%B2%DB%B3%DB%B4%DB%B5%DB%B6%DB%B7 200", "GET /n/?q=۰۷۹۱****۶۷ 200"),
        ("GET /n/%D9%A0%D9%A7%D9%A91234567/", "GET /n/٠٧٩1****67/"),  # mixed scripts
        ("name=%D8%A7%D9%84%D9%81 2", "name=%D8%A7%D9%84%D9%81 2"),  # encoded text, not a number
    ],
)
def test_log_filter_masks_afghan_msisdns_in_every_accepted_form(text: str, masked: str) -> None:
    from core.logging import mask_numbers_in

    assert mask_numbers_in(text) == masked


def test_number_formats_accepted_and_refused() -> None:
    from core.errors import ValidationError
    from core.formats import parse_number

    assert parse_number("93 79 123 4567").number == "+93791234567"
    assert parse_number("079-123-4567").number == "+93791234567"
    assert parse_number("+93791234567").prefix == "79"
    assert parse_number("4040").prefix == ""
    for bad in (None, "  ", "0123", "+9379123456"):
        with pytest.raises(ValidationError, match="number"):
            parse_number(bad)
