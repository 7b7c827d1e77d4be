"""Signed inventory import (DESIGN §7): the ONE code path behind the management command,
the admin wizard, the REST endpoint and the Celery task.

1. ``import_create`` streams the CSV and its detached signature to
   INVENTORY_IMPORT_DIR, hashing and counting lines on the way → InventoryImport PENDING.
2. ``run_import`` (any process, any number of times):
   a. verifies the signature over the exact stored bytes with a currently valid key of the
      issuer — before a single byte is parsed;
   b. validates every row while streaming the file, copying the results in batches into a
      session temp table (memory stays bounded by the batch, not the file);
   c. marks duplicates inside the file and against the inventory with SQL;
   d. commits in ONE transaction in the chosen mode: blocks, numbers (AVAILABLE, pooled),
      the import record with its per-row report, an audit event and the outbox event
      ``numbering.import.completed.v1``. All-or-nothing refuses when any row is bad;
      valid-rows imports exactly the good ones. A file already committed is a no-op.

The CSV format is specified in docs/import-csv-format.md.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from prometheus_client import Counter

from audit.services import audit_append
from contracts import signing
from contracts.models import InventoryImport, Issuer, NumberBlock, SigningKey
from contracts.selectors import active_contract, issuer_by_code, signing_key_problem, signing_keys_valid
from core import errors
from core.actors import Actor
from core.formats import MSISDN, SHORT_CODE, parse_number
from core.outbox import outbox_enqueue
from core.rls import rls_scope
from numbering.models import VANITY_TIERS
from pools.models import InventoryPool

logger = logging.getLogger(__name__)

HEADER = ("number", "kind", "vanity_tier", "block")
OPTIONAL_COLUMNS = ("pool",)
# DESIGN §7: a cell starting with one of these could be read as a formula by a spreadsheet.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_E164_STRICT = re.compile(r"^\+937\d{8}$")
BLOCK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/:-]{0,127}$")
MAX_BLOCKS_PER_FILE = 1000
DEFAULT_POOLS = {
    (MSISDN, False): "GENERAL_MSISDN",
    (SHORT_CODE, False): "STANDARD_SHORT_CODES",
    (SHORT_CODE, True): "VANITY_SHORT_CODES",
}
EVENT_COMPLETED = "numbering.import.completed.v1"
# pg_advisory_xact_lock key serialising import commits (they are rare and short).
_LOCK_KEY = 0x1A90_0005

VALID, INVALID, DUP_FILE, DUP_INVENTORY = 0, 1, 2, 3
RESULT = {VALID: "imported", INVALID: "invalid", DUP_FILE: "duplicate", DUP_INVENTORY: "duplicate"}
_TEMP = "pg_temp.import_rows"
S = InventoryImport.Status


class _Refusal(Exception):
    """The file, its signature or its rows are refused; nothing is imported."""


@dataclass
class ImportOutcome:
    import_id: int
    status: str
    message: str
    mode: str
    committed: bool = False
    noop: bool = False
    dry_run: bool = False
    total: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    key_fingerprint: str = ""
    report: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Committed, a no-op re-import, or a dry run that the chosen mode would commit."""
        return self.status in (S.COMMITTED, S.ALREADY_IMPORTED) or (self.dry_run and self.status == S.VERIFIED)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- storage ---------------------------------------------------------------------------------


def _storage_dir() -> Path:
    path = Path(settings.INVENTORY_IMPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def csv_path(imp: InventoryImport) -> Path:
    return _storage_dir() / f"{imp.pk}.csv"


def signature_path(imp: InventoryImport) -> Path:
    return _storage_dir() / f"{imp.pk}.sig"


def _chunks(source: bytes | IO[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray):
        for i in range(0, len(source), size):
            yield bytes(source[i : i + size])
        return
    while chunk := source.read(size):
        yield chunk


def import_create(
    *,
    issuer_code: str,
    csv_file: bytes | IO[bytes],
    signature: bytes | IO[bytes],
    actor: Actor,
    filename: str = "",
    mode: str = InventoryImport.Mode.ALL_OR_NOTHING,
) -> InventoryImport:
    """Store an upload and create its InventoryImport (PENDING). Nothing is parsed yet."""
    issuer = issuer_by_code(issuer_code)
    if issuer is None:
        known = ", ".join(Issuer.objects.values_list("code", flat=True)) or "none installed"
        raise errors.ImportRefused(f"issuer: unknown issuer code {issuer_code!r} (known: {known})", field="issuer")
    if mode not in InventoryImport.Mode.values:
        raise errors.ImportRefused(
            f"mode: {mode!r} is not one of {', '.join(InventoryImport.Mode.values)}", field="mode"
        )
    sig = signature if isinstance(signature, bytes) else signature.read(signing.MAX_SIGNATURE_BYTES + 1)
    directory = _storage_dir()
    digest, size, newlines, last = hashlib.sha256(), 0, 0, b""
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".upload")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(csv_file):
                size += len(chunk)
                if size > settings.INVENTORY_IMPORT_MAX_BYTES:
                    raise errors.ImportRefused(
                        f"csv: file is larger than {settings.INVENTORY_IMPORT_MAX_BYTES} bytes "
                        "(INVENTORY_IMPORT_MAX_BYTES)",
                        field="csv",
                    )
                digest.update(chunk)
                newlines += chunk.count(b"\n")
                last = chunk[-1:]
                out.write(chunk)
        lines = newlines + (1 if size and last != b"\n" else 0)
        imp = InventoryImport.objects.create(
            issuer=issuer,
            contract=active_contract(issuer),
            filename=filename[:255],
            file_sha256=digest.hexdigest(),
            mode=mode,
            status=S.PENDING,
            total_rows=max(lines - 1, 0),
            created_by=actor.identity,
        )
        os.replace(tmp, csv_path(imp))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    signature_path(imp).write_bytes(sig)
    return imp


def import_set_mode(*, import_id: int, mode: str) -> InventoryImport:
    if mode not in InventoryImport.Mode.values:
        raise errors.ValidationError(
            f"mode: {mode!r} is not one of {', '.join(InventoryImport.Mode.values)}", field="mode"
        )
    InventoryImport.objects.filter(pk=import_id).exclude(status=S.COMMITTED).update(mode=mode)
    return InventoryImport.objects.get(pk=import_id)


# --- 2a. signature -------------------------------------------------------------------------


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in _chunks(fh):
            digest.update(chunk)
    return digest.digest()


def verify_signature(imp: InventoryImport) -> SigningKey:
    """The valid key of the issuer the signature verifies with; _Refusal otherwise."""
    signature = signature_path(imp).read_bytes()
    digest = _file_digest(csv_path(imp))
    if digest.hex() != imp.file_sha256:
        raise _Refusal("csv: the stored file changed after upload (SHA-256 mismatch); upload it again")
    issuer = imp.issuer
    if not signature:
        raise _Refusal("signature: the detached signature is empty")
    if len(signature) > signing.MAX_SIGNATURE_BYTES:
        raise _Refusal(f"signature: {len(signature)} bytes is not an RSA signature (max {signing.MAX_SIGNATURE_BYTES})")
    now = timezone.now()
    all_keys = list(SigningKey.objects.filter(issuer=issuer))
    if not all_keys:
        raise _Refusal(f"signature: issuer {issuer.code} has no signing key installed (add_signing_key)")
    valid = list(signing_keys_valid(issuer, at=now))
    for key in valid:
        if signing.verify_digest(signing.load_public_key(key.public_key_pem), signature, digest):
            return key
    # Say precisely why: a signature by a retired key reads differently from a forgery.
    for key in all_keys:
        problem = signing_key_problem(key, at=now)
        if problem and signing.verify_digest(signing.load_public_key(key.public_key_pem), signature, digest):
            raise _Refusal(f"signature: made with key {key.fingerprint[:16]}… of {issuer.code}, which is {problem}")
    if not valid:
        why = "; ".join(f"{k.fingerprint[:16]}… {signing_key_problem(k, at=now)}" for k in all_keys)
        raise _Refusal(f"signature: issuer {issuer.code} has no valid signing key ({why})")
    tried = ", ".join(f"{k.fingerprint[:16]}…" for k in valid)
    raise _Refusal(
        f"signature: does not verify over the file's exact bytes with any valid key of {issuer.code} (tried {tried});"
        " the file or the signature was altered, truncated, or signed by another key"
    )


# --- 2b. rows ----------------------------------------------------------------------------------


@dataclass
class _Row:
    row_no: int
    status: int = VALID
    number: str = ""
    kind: str = ""
    vanity: bool = False
    tier: str = ""
    block: str = ""
    pool_id: int | None = None
    message: str = ""

    def invalid(self, column: str, rule: str) -> _Row:
        self.status, self.message = INVALID, f"row {self.row_no}, column {column}: {rule}"
        return self


class _RowChecker:
    def __init__(self, issuer: Issuer, columns: tuple[str, ...]) -> None:
        self.issuer = issuer
        self.columns = columns
        self.pools = {p.code: p for p in InventoryPool.objects.all()}
        self.block_kinds: dict[str, str] = dict(NumberBlock.objects.filter(issuer=issuer).values_list("name", "kind"))
        self.file_blocks: set[str] = set()

    def check(self, row_no: int, cells: list[str]) -> _Row:
        row = _Row(row_no, number=(cells[0][:40] if cells else ""))
        if len(cells) != len(self.columns):
            row.status = INVALID
            row.message = (
                f"row {row_no}: expected {len(self.columns)} columns ({','.join(self.columns)}), found {len(cells)}"
            )
            return row
        values = dict(zip(self.columns, cells, strict=True))
        for column, value in values.items():
            if value.startswith(FORMULA_PREFIXES) and not (column == "number" and _E164_STRICT.match(value)):
                return row.invalid(
                    column, f"{value[:1]!r} at the start of a cell could be read as a spreadsheet formula"
                )
        try:
            parsed = parse_number(values["number"])
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
            if tier not in VANITY_TIERS:
                return row.invalid("vanity_tier", f"{tier!r} must be empty or one of {', '.join(VANITY_TIERS)}")
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


def _lines(path: Path) -> Iterator[str]:
    """Decoded lines, naming the row of an encoding error (rows = physical lines)."""
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Refusal(f"row {line_no}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


def _check_header(cells: list[str] | None) -> tuple[str, ...]:
    if cells is None:
        raise _Refusal("row 1: the file is empty; expected the header " + ",".join(HEADER))
    names = [c.strip() for c in cells]
    for i, expected in enumerate(HEADER):
        found = names[i] if i < len(names) else None
        if found != expected:
            raise _Refusal(
                f"row 1, column {i + 1}: expected header {expected!r}, found {found!r}"
                f" (the header must be {','.join(HEADER)}[,{','.join(OPTIONAL_COLUMNS)}])"
            )
    extra = names[len(HEADER) :]
    if extra and extra != list(OPTIONAL_COLUMNS[: len(extra)]):
        raise _Refusal(
            f"row 1, column {len(HEADER) + 1}: unexpected header {extra[0]!r}"
            f" (only {','.join(OPTIONAL_COLUMNS)} may follow {','.join(HEADER)})"
        )
    return tuple(names)


_COPY_COLUMNS = ("row_no", "number", "kind", "vanity", "tier", "block", "pool_id", "status", "message")


def _create_temp_table() -> None:
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {_TEMP}")
        cur.execute(
            "CREATE TEMP TABLE import_rows (row_no integer PRIMARY KEY, number text NOT NULL, kind text,"
            " vanity boolean, tier text, block text, pool_id bigint, status smallint NOT NULL, message text)"
        )


def _flush(batch: list[_Row]) -> None:
    if not batch:
        return
    with connection.cursor() as cur, cur.copy(f"COPY {_TEMP} ({', '.join(_COPY_COLUMNS)}) FROM STDIN") as copy:
        for r in batch:
            copy.write_row((r.row_no, r.number, r.kind, r.vanity, r.tier, r.block, r.pool_id, r.status, r.message))
    batch.clear()


def _validate_rows(imp: InventoryImport) -> None:
    """Stream the file into the temp table; duplicates inside the file are marked by SQL."""
    _create_temp_table()
    reader = csv.reader(_lines(csv_path(imp)), strict=True)
    batch: list[_Row] = []
    processed = 0
    try:
        checker = _RowChecker(imp.issuer, _check_header(next(reader, None)))
        for cells in reader:
            batch.append(checker.check(reader.line_num, cells))
            processed += 1
            if len(batch) >= settings.INVENTORY_IMPORT_BATCH_ROWS:
                _flush(batch)
                _progress(imp, processed)
    except csv.Error as exc:
        raise _Refusal(f"row {reader.line_num}: malformed CSV ({exc})") from None
    _flush(batch)
    _progress(imp, processed, total=processed)
    with connection.cursor() as cur:
        cur.execute(f"CREATE INDEX ON {_TEMP} (number)")
        cur.execute(f"ANALYZE {_TEMP}")
        cur.execute(
            f"UPDATE {_TEMP} r SET status = %s, message = 'row ' || r.row_no || ', column number: duplicate of row '"
            f" || d.first_row || ' in this file'"
            f" FROM (SELECT number, min(row_no) AS first_row FROM {_TEMP} WHERE status = %s"
            f"       GROUP BY number HAVING count(*) > 1) d"
            f" WHERE r.status = %s AND r.number = d.number AND r.row_no > d.first_row",
            [DUP_FILE, VALID, VALID],
        )


def _mark_inventory_duplicates() -> None:
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {_TEMP} r SET status = %s,"
            f" message = 'row ' || r.row_no || ', column number: ' || n.number || ' is already in the inventory'"
            f" FROM numbering_number n WHERE r.status = %s AND n.number = r.number",
            [DUP_INVENTORY, VALID],
        )


def _counts() -> dict[int, int]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT status, count(*) FROM {_TEMP} GROUP BY status")
        return dict(cur.fetchall())


def _report() -> list[dict[str, Any]]:
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT row_no, status, number, message FROM {_TEMP} WHERE status <> %s ORDER BY row_no LIMIT %s",
            [VALID, settings.INVENTORY_IMPORT_REPORT_LIMIT],
        )
        return [
            {"row": row_no, "result": RESULT[status], "value": value, "message": message}
            for row_no, status, value, message in cur.fetchall()
        ]


def _progress(imp: InventoryImport, processed: int, total: int | None = None) -> None:
    # Outside a transaction this commits at once, so the admin and the API see it move.
    fields: dict[str, Any] = {"processed_rows": processed}
    if total is not None:
        fields["total_rows"] = total
    InventoryImport.objects.filter(pk=imp.pk).update(**fields)


# --- 2d. commit ----------------------------------------------------------------------------------


def _create_blocks(imp: InventoryImport) -> list[str]:
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT block, kind, min(number), max(number) FROM {_TEMP} WHERE status = %s GROUP BY block, kind"
            " ORDER BY block",
            [VALID],
        )
        rows = cur.fetchall()
    names = []
    for name, kind, low, high in rows:
        block, created = NumberBlock.objects.get_or_create(
            issuer=imp.issuer,
            name=name,
            defaults={
                "kind": kind,
                "contract": imp.contract,
                "range_start": low,
                "range_end": high,
                "inventory_import": imp,
            },
        )
        if not created and (low < block.range_start or high > block.range_end):
            block.range_start, block.range_end = min(low, block.range_start), max(high, block.range_end)
            block.save(update_fields=["range_start", "range_end"])
        names.append(name)
    return names


def _insert_numbers(imp: InventoryImport) -> int:
    now = timezone.now()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO numbering_number (number, kind, issuer_id, block_id, pool_id, vanity, vanity_tier, is_test,"
            " state, version, state_changed_at, created_at)"
            " SELECT r.number, r.kind, b.issuer_id, b.id, r.pool_id, r.vanity, r.tier, false, 'AVAILABLE', 1, %s, %s"
            f" FROM {_TEMP} r JOIN contracts_numberblock b ON b.issuer_id = %s AND b.name = r.block"
            " WHERE r.status = %s ORDER BY r.row_no",
            [now, now, imp.issuer_id, VALID],
        )
        return cur.rowcount


# What an import run ended in, per issuer (the NumberingLeaseImportFailed alert reads it).
_RESULT_LABEL: dict[str, str] = {
    S.COMMITTED: "imported",
    S.REJECTED: "rejected",
    S.FAILED: "failed",
    S.ALREADY_IMPORTED: "noop",
    S.VERIFIED: "verified",
}
IMPORT_RESULTS = Counter("numbering_inventory_imports_total", "Inventory import runs by result", ["issuer", "result"])


def _finish(imp: InventoryImport, status: str, *, error: str = "", **fields: Any) -> None:
    imp.status, imp.error, imp.completed_at = status, error, timezone.now()
    for name, value in fields.items():
        setattr(imp, name, value)
    imp.save()
    IMPORT_RESULTS.labels(imp.issuer.code, _RESULT_LABEL.get(status, status.lower())).inc()


def _outcome(imp: InventoryImport, message: str, **kw: Any) -> ImportOutcome:
    return ImportOutcome(
        import_id=imp.pk,
        status=imp.status,
        message=message,
        mode=imp.mode,
        total=imp.total_rows,
        accepted=imp.accepted_count,
        rejected=imp.rejected_count,
        duplicates=imp.duplicate_count,
        key_fingerprint=imp.key_fingerprint,
        report=imp.report,
        **kw,
    )


def _already(imp: InventoryImport) -> InventoryImport | None:
    return (
        InventoryImport.objects.filter(issuer_id=imp.issuer_id, file_sha256=imp.file_sha256, status=S.COMMITTED)
        .exclude(pk=imp.pk)
        .first()
    )


def run_import(import_id: int, *, mode: str | None = None, dry_run: bool = False) -> ImportOutcome:
    """Verify, validate and (unless dry_run) commit one import. Safe to call again: a
    committed import or an already-imported file is a no-op; a refused one is re-checked."""
    imp = InventoryImport.objects.select_related("issuer", "contract").get(pk=import_id)
    if imp.status == S.COMMITTED:
        return _outcome(imp, f"import {imp.pk} was already committed; nothing to do", noop=True)
    if mode is not None:
        imp = import_set_mode(import_id=import_id, mode=mode)
    InventoryImport.objects.filter(pk=imp.pk).update(status=S.RUNNING, processed_rows=0, error="")
    try:
        key = verify_signature(imp)
        imp.key_fingerprint = key.fingerprint
        InventoryImport.objects.filter(pk=imp.pk).update(key_fingerprint=key.fingerprint)
        previous = _already(imp)
        if previous is not None:
            message = (
                f"no-op: this file (SHA-256 {imp.file_sha256[:16]}…) was already imported as import {previous.pk}"
                f" on {previous.completed_at:%Y-%m-%d %H:%M} UTC; nothing changed"
            )
            _finish(imp, S.ALREADY_IMPORTED, error=message, processed_rows=imp.total_rows)
            return _outcome(imp, message, noop=True)
        _validate_rows(imp)
        return _commit(imp, dry_run=dry_run)
    except _Refusal as exc:
        imp.refresh_from_db()
        _finish(imp, S.REJECTED, error=str(exc), report=[])
        logger.info("inventory import %s refused: %s", imp.pk, exc)
        return _outcome(imp, f"refused: {exc}", dry_run=dry_run)
    except Exception as exc:
        imp.refresh_from_db()
        _finish(imp, S.FAILED, error=f"{type(exc).__name__}: {exc}")
        logger.exception("inventory import %s failed", imp.pk)
        raise
    finally:
        with connection.cursor() as cur:
            if not connection.needs_rollback:
                cur.execute(f"DROP TABLE IF EXISTS {_TEMP}")


def _commit(imp: InventoryImport, *, dry_run: bool) -> ImportOutcome:
    with transaction.atomic(), rls_scope(platform=True):
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        imp = (
            InventoryImport.objects.select_for_update(of=("self",)).select_related("issuer", "contract").get(pk=imp.pk)
        )
        previous = _already(imp)
        if previous is not None:  # another worker committed the same file while we validated
            message = f"no-op: this file was already imported as import {previous.pk}; nothing changed"
            _finish(imp, S.ALREADY_IMPORTED, error=message)
            return _outcome(imp, message, noop=True)
        _mark_inventory_duplicates()
        counts = _counts()
        valid, invalid = counts.get(VALID, 0), counts.get(INVALID, 0)
        duplicates = counts.get(DUP_FILE, 0) + counts.get(DUP_INVENTORY, 0)
        total = valid + invalid + duplicates
        summary: dict[str, Any] = {
            "total_rows": total,
            "rejected_count": invalid,
            "duplicate_count": duplicates,
            "report": _report(),
        }
        problems = invalid + duplicates
        if imp.mode == InventoryImport.Mode.ALL_OR_NOTHING and problems:
            message = (
                f"refused: {invalid} invalid and {duplicates} duplicate row(s) of {total}; nothing imported"
                f" (mode all-or-nothing; valid-rows would import the {valid} valid row(s))"
            )
            status = S.VERIFIED if dry_run else S.REJECTED
            _finish(imp, status, error=message, accepted_count=0, processed_rows=total, **summary)
            return _outcome(imp, message, dry_run=dry_run) if not dry_run else _dry(imp, message, ok=False)
        if valid == 0:
            message = f"refused: none of the {total} row(s) is valid; nothing imported"
            _finish(
                imp,
                S.VERIFIED if dry_run else S.REJECTED,
                error=message,
                accepted_count=0,
                processed_rows=total,
                **summary,
            )
            return _outcome(imp, message) if not dry_run else _dry(imp, message, ok=False)
        if dry_run:
            message = f"dry run: {valid} row(s) would be imported ({invalid} invalid, {duplicates} duplicate)"
            _finish(imp, S.VERIFIED, error="", accepted_count=valid, processed_rows=total, **summary)
            return _dry(imp, message, ok=True)
        blocks = _create_blocks(imp)
        inserted = _insert_numbers(imp)
        assert inserted == valid, (inserted, valid)
        _finish(imp, S.COMMITTED, accepted_count=inserted, processed_rows=total, **summary)
        data = {
            "import_id": imp.pk,
            "issuer": imp.issuer.code,
            "file_sha256": imp.file_sha256,
            "key_fingerprint": imp.key_fingerprint,
            "mode": imp.mode,
            "total_rows": total,
            "accepted": inserted,
            "rejected": invalid,
            "duplicates": duplicates,
            "blocks": blocks,
        }
        audit_append(
            actor=imp.created_by,
            action="inventory.import",
            object_type="inventory_import",
            object_id=f"import:{imp.pk}",
            after=data,
        )
        outbox_enqueue(event_type=EVENT_COMPLETED, aggregate_id=f"import:{imp.pk}", data=data, subject=EVENT_COMPLETED)
    message = f"imported {inserted} number(s) into {len(blocks)} block(s); {invalid} invalid, {duplicates} duplicate"
    logger.info("inventory import %s committed: %s", imp.pk, message)
    return _outcome(imp, message, committed=True)


def _dry(imp: InventoryImport, message: str, *, ok: bool) -> ImportOutcome:
    outcome = _outcome(imp, message, dry_run=True)
    if not ok:
        outcome.status = S.REJECTED  # what a real run would do; the record stays VERIFIED
    return outcome


def import_file(
    *,
    issuer_code: str,
    csv_file: bytes | IO[bytes],
    signature: bytes | IO[bytes],
    actor: Actor,
    filename: str = "",
    mode: str = InventoryImport.Mode.ALL_OR_NOTHING,
    dry_run: bool = False,
) -> ImportOutcome:
    """create + run in one call (the command, seed_demo, tests)."""
    imp = import_create(
        issuer_code=issuer_code, csv_file=csv_file, signature=signature, actor=actor, filename=filename, mode=mode
    )
    return run_import(imp.pk, dry_run=dry_run)
