"""Formula-injection-safe CSV writing (DESIGN §7: every CSV the service writes).

A spreadsheet treats a cell starting with =, +, -, @, tab or CR as a formula (or as the
start of one after it trims the whitespace). Prefixing such a cell with a single quote
makes it inert text (OWASP "CSV injection"). Every CSV writer of the service goes through
`SafeCsvWriter` or `csv_line`, so no writer can forget.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Protocol

from core.formats import is_e164

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# A bare E.164 number is digits after the plus: a spreadsheet can at worst show it as a
# number, never run it. Left as is (like the import rule of DESIGN §7), so the number
# column stays machine-readable for the regulator.


def neutralise(value: Any) -> str:
    """The text of one cell, made inert if a spreadsheet would read it as a formula.

    A cell that is exactly an E.164 number is the one exception (core.formats.is_e164)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value)
    if text.startswith(FORMULA_TRIGGERS) and not is_e164(text):
        return "'" + text
    return text


def restore(cell: str) -> str:
    """Undo `neutralise` for a reader that wants the original text back."""
    if cell.startswith("'") and cell[1:2] in FORMULA_TRIGGERS and cell[1:2] != "":
        return cell[1:]
    return cell


class TextSink(Protocol):
    def write(self, text: str, /) -> Any: ...


class SafeCsvWriter:
    """csv.writer whose every cell is neutralised; lines end with CRLF (RFC 4180)."""

    def __init__(self, stream: TextSink) -> None:
        self._writer = csv.writer(stream, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])


def csv_line(row: Iterable[Any]) -> str:
    """One neutralised CSV line, for streaming responses."""
    buffer = io.StringIO()
    SafeCsvWriter(buffer).writerow(row)
    return buffer.getvalue()
