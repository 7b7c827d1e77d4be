from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contracts.services import signing_key_add
from core.actors import Actor
from core.errors import DomainError


def _when(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--{name}: {value!r} is not an ISO 8601 date-time (e.g. 2026-01-01T00:00:00Z)") from None


class Command(BaseCommand):
    help = "Install an issuer's public signing key (PEM) for inventory imports."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--issuer", required=True, help="issuer code, e.g. ROSHAN")
        parser.add_argument("--pem", required=True, help="file with the RSA public key (PEM)")
        parser.add_argument("--valid-from", dest="valid_from", help="ISO 8601 with offset (default: now)")
        parser.add_argument("--valid-to", dest="valid_to", help="ISO 8601 with offset (default: no expiry)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["pem"])
        if not path.is_file():
            raise CommandError(f"--pem: no such file {path}")
        try:
            key = signing_key_add(
                issuer_code=options["issuer"],
                public_key_pem=path.read_text(),
                valid_from=_when("valid-from", options["valid_from"]),
                valid_to=_when("valid-to", options["valid_to"]),
                actor=Actor.system("manage.py add_signing_key"),
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        until = key.valid_to.isoformat() if key.valid_to else "no expiry"
        self.stdout.write(
            f"signing key {key.fingerprint} installed for {key.issuer.code}"
            f" (valid {key.valid_from.isoformat()} → {until})"
        )
