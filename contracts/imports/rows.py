"""Reading and checking the CSV (docs/import-csv-format.md): decoding, the header, and
the rules every row must pass. Pure of SQL writes: the staging module stores the results."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from contracts.imports.outcome import Refusal
from contracts.models import Issuer, NumberBlock
from core import errors
from core.formats import MSISDN, SHORT_CODE, is_canonical_msisdn, parse_import_number
from numbering.selectors import vanity_tier_codes
from pools.models import InventoryPool

HEADER = ("number", "kind", "vanity_tier", "block")
OPTIONAL_COLUMNS = ("pool",)
# DESIGN §7: a cell starting with one of these could be read as a formula by a spreadsheet.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BLOCK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/:-]{0,127}$")
MAX_BLOCKS_PER_FILE = 1000
DEFAULT_POOLS = {
    (MSISDN, False): "GENERAL_MSISDN",
    (SHORT_CODE, False): "STANDARD_SHORT_CODES",
    (SHORT_CODE, True): "VANITY_SHORT_CODES",
}

# A row's status in the staging table; the report names invalid rows and both kinds of duplicate.
VALID, INVALID, DUP_FILE, DUP_INVENTORY = 0, 1, 2, 3
RESULT = {VALID: "imported", INVALID: "invalid", DUP_FILE: "duplicate", DUP_INVENTORY: "duplicate"}


@dataclass
class Row:
    row_no: int
    status: int = VALID
    number: str = ""
    kind: str = ""
    vanity: bool = False
    tier: str = ""
    block: str = ""
    pool_id: int | None = None
    message: str = ""

    def invalid(self, column: str, rule: str) -> Row:
        self.status, self.message = INVALID, f"row {self.row_no}, column {column}: {rule}"
        return self


class RowChecker:
    def __init__(self, issuer: Issuer, columns: tuple[str, ...]) -> None:
        self.issuer = issuer
        # Tiers are data (ADR 1650): the active ones, read once per import.
        self.tiers = vanity_tier_codes()
        self.columns = columns
        self.pools = {p.code: p for p in InventoryPool.objects.all()}
        self.block_kinds: dict[str, str] = dict(NumberBlock.objects.filter(issuer=issuer).values_list("name", "kind"))
        self.file_blocks: set[str] = set()

    def check(self, row_no: int, cells: list[str]) -> Row:
        row = Row(row_no, number=(cells[0][:40] if cells else ""))
        if len(cells) != len(self.columns):
            row.status = INVALID
            row.message = (
                f"row {row_no}: expected {len(self.columns)} columns ({','.join(self.columns)}), found {len(cells)}"
            )
            return row
        values = dict(zip(self.columns, cells, strict=True))
        for column, value in values.items():
            if value.startswith(FORMULA_PREFIXES) and not (column == "number" and is_canonical_msisdn(value)):
                return row.invalid(
                    column, f"{value[:1]!r} at the start of a cell could be read as a spreadsheet formula"
                )
        try:
            # Strict about the file's format (ASCII digits, no separators), then the rule every
            # input passes (libphonenumber, region AF): nothing non-ASCII is ever stored.
            parsed = parse_import_number(values["number"])
        except errors.ValidationError as exc:
            return row.invalid("number", exc.message.removeprefix("number: "))
        row.number, kind = parsed.number, values["kind"].strip()
        if kind not in (MSISDN, SHORT_CODE):
            return row.invalid("kind", f"{kind!r} must be MSISDN or SHORT_CODE")
        if kind != parsed.kind:
            return row.invalid("kind", f"{kind} does not match number {values['number']!r}, which is a {parsed.kind}")
        row.kind = kind
        if self.issuer.kind == Issuer.Kind.MNO:
            if kind != MSISDN:
                return row.invalid("kind", f"{self.issuer.code} is an MNO and may only import MSISDNs")
            if parsed.prefix not in self.issuer.msisdn_prefixes:
                allowed = "/".join(self.issuer.msisdn_prefixes) or "none"
                return row.invalid(
                    "number", f"{parsed.number} is outside {self.issuer.code}'s prefixes (+93 {allowed})"
                )
        elif kind != SHORT_CODE:
            return row.invalid("kind", f"{self.issuer.code} is the regulator and may only import SHORT_CODEs")
        tier = values["vanity_tier"].strip().upper()
        if tier:
            if kind != SHORT_CODE:
                return row.invalid("vanity_tier", "only short codes have a vanity tier; leave it empty for MSISDNs")
            if tier not in self.tiers:
                return row.invalid("vanity_tier", f"{tier!r} must be empty or one of {', '.join(self.tiers)}")
        row.tier, row.vanity = tier, bool(tier)
        block = values["block"].strip()
        if not BLOCK_NAME.match(block):
            return row.invalid(
                "block", f"{block[:40]!r} must be 1-128 characters: letters, digits, space . _ / : - (not first)"
            )
        known_kind = self.block_kinds.get(block)
        if known_kind is not None and known_kind != kind:
            return row.invalid("block", f"block {block!r} holds {known_kind}s, not {kind}s")
        if block not in self.file_blocks:
            if len(self.file_blocks) >= MAX_BLOCKS_PER_FILE:
                return row.invalid("block", f"a file may name at most {MAX_BLOCKS_PER_FILE} blocks")
            self.file_blocks.add(block)
            self.block_kinds.setdefault(block, kind)
        row.block = block
        pool_code = values.get("pool", "").strip()
        if pool_code:
            pool = self.pools.get(pool_code)
            if pool is None:
                return row.invalid("pool", f"{pool_code!r} is not an inventory pool")
            if pool.kind != kind:
                return row.invalid("pool", f"pool {pool_code} holds {pool.kind}s, not {kind}s")
            if pool.vanity != row.vanity and not pool.government_reserved:
                return row.invalid("pool", f"pool {pool_code} is {'a vanity' if pool.vanity else 'not a vanity'} pool")
            row.pool_id = pool.pk
        else:
            default = self.pools.get(DEFAULT_POOLS[(kind, row.vanity)])
            row.pool_id = default.pk if default else None
        return row


def lines(path: Path) -> Iterator[str]:
    """Decoded lines, naming the row of an encoding error (rows = physical lines)."""
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Refusal(f"row {line_no}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


def check_header(cells: list[str] | None) -> tuple[str, ...]:
    if cells is None:
        raise Refusal("row 1: the file is empty; expected the header " + ",".join(HEADER))
    names = [c.strip() for c in cells]
    for i, expected in enumerate(HEADER):
        found = names[i] if i < len(names) else None
        if found != expected:
            raise Refusal(
                f"row 1, column {i + 1}: expected header {expected!r}, found {found!r}"
                f" (the header must be {','.join(HEADER)}[,{','.join(OPTIONAL_COLUMNS)}])"
            )
    extra = names[len(HEADER) :]
    if extra and extra != list(OPTIONAL_COLUMNS[: len(extra)]):
        raise Refusal(
            f"row 1, column {len(HEADER) + 1}: unexpected header {extra[0]!r}"
            f" (only {','.join(OPTIONAL_COLUMNS)} may follow {','.join(HEADER)})"
        )
    return tuple(names)
