from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from core.csv_safety import SafeCsvWriter, csv_line, neutralise, restore


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", '=HYPERLINK("http://e")'])
def test_cells_starting_with_a_formula_trigger_are_prefixed_with_a_quote(text: str) -> None:
    assert neutralise(text) == "'" + text
    assert restore(neutralise(text)) == text


@pytest.mark.parametrize("text", ["Alice", "", "93791234567", "a=b", "'quoted", "+93791234567"])
def test_harmless_cells_and_bare_e164_numbers_are_left_alone(text: str) -> None:
    assert neutralise(text) == text


def test_an_e164_lookalike_with_more_text_is_still_neutralised() -> None:
    assert neutralise("+93791234567+cmd|' /C calc'!A0") == "'+93791234567+cmd|' /C calc'!A0"


def test_non_text_values_are_rendered_plainly() -> None:
    assert neutralise(None) == ""
    assert neutralise(True) == "true"
    assert neutralise(-5) == "'-5"
    assert neutralise(datetime(2026, 1, 2, 3, 4, tzinfo=UTC)) == "2026-01-02T03:04:00+00:00"


def test_writer_output_parses_back_with_inert_cells() -> None:
    buffer = io.StringIO()
    SafeCsvWriter(buffer).writerow(["=evil", "ok, with comma", "\rcr"])
    assert buffer.getvalue().endswith("\r\n")
    row = next(csv.reader(io.StringIO(buffer.getvalue())))
    assert row == ["'=evil", "ok, with comma", "'\rcr"]
    assert csv_line(["@x"]) == "'@x\r\n"
