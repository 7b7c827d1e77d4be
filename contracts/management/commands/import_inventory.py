from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contracts.imports import ImportOutcome, import_file
from contracts.models import InventoryImport
from core.actors import Actor
from core.errors import DomainError


class Command(BaseCommand):
    help = "Import a signed inventory CSV (docs/import-csv-format.md) for an issuer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--issuer", required=True, help="issuer code, e.g. ROSHAN or ATRA")
        parser.add_argument("--csv", required=True, help="the CSV file, exactly as signed")
        parser.add_argument("--signature", required=True, help="the detached signature (raw bytes)")
        parser.add_argument("--mode", default="all-or-nothing", choices=InventoryImport.Mode.values)
        parser.add_argument("--dry-run", action="store_true", help="verify and validate only; import nothing")
        parser.add_argument("--max-report", type=int, default=50, help="problem rows to print (default 50)")

    def handle(self, *args: Any, **options: Any) -> None:
        paths = {name: Path(options[name]) for name in ("csv", "signature")}
        for name, path in paths.items():
            if not path.is_file():
                raise CommandError(f"--{name}: no such file {path}")
        try:
            with paths["csv"].open("rb") as fh:
                outcome = import_file(
                    issuer_code=options["issuer"],
                    csv_file=fh,
                    signature=paths["signature"].read_bytes(),
                    actor=Actor.system("manage.py import_inventory"),
                    filename=paths["csv"].name,
                    mode=options["mode"],
                    dry_run=options["dry_run"],
                )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self._print(outcome, options["max_report"])
        if not outcome.ok:
            raise CommandError(outcome.message, returncode=1)

    def _print(self, o: ImportOutcome, limit: int) -> None:
        w = self.stdout.write
        w(f"import {o.import_id}: {o.status}{' (dry run)' if o.dry_run else ''} — {o.message}")
        if o.key_fingerprint:
            w(f"  signature verified with key {o.key_fingerprint}")
        w(f"  mode {o.mode}: rows {o.total}, imported {o.accepted}, invalid {o.rejected}, duplicate {o.duplicates}")
        for entry in o.report[:limit]:
            w(f"  row {entry['row']}: {entry['result']}: {entry['message']}")
        if len(o.report) > limit:
            w(f"  … {len(o.report) - limit} more problem row(s) in the import's report")
