"""Issuers with installed keys and helpers that write and sign CSVs like an MNO does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from contracts import signing
from contracts.models import Issuer, NumberBlock, SigningKey
from core.actors import Actor
from core.models import OutboxEvent
from numbering.models import Number
from tests.factories import InventoryPoolFactory, IssuerFactory

HEADER = "number,kind,vanity_tier,block\n"

# One RSA key per role, generated once per session (key generation is the slow part).
_KEYS: dict[str, Any] = {}


def private_key(name: str) -> Any:
    if name not in _KEYS:
        _KEYS[name] = signing.generate_private_key()
    return _KEYS[name]


@dataclass
class Signed:
    csv: bytes
    signature: bytes


def sign_csv(data: bytes | str, key: str = "roshan", scheme: str = "RSA-PSS") -> Signed:
    raw = data.encode() if isinstance(data, str) else data
    return Signed(raw, signing.sign(private_key(key), raw, scheme=scheme))


def msisdn_rows(count: int, *, prefix: str = "79", start: int = 0, block: str = "R-2026-01") -> str:
    return "".join(f"+93{prefix}{start + i:07d},MSISDN,,{block}\n" for i in range(count))


def install_key(issuer: Issuer, key: str, *, approved: bool = True, **kw: Any) -> SigningKey:
    """A key installed a day ago (backdated past the service's window check, hence the ORM)
    and — unless approved=False — approved through the service by a second actor (four eyes)."""
    from contracts.services import signing_key_approve
    from core.actors import Actor

    pub = private_key(key).public_key()
    row = SigningKey.objects.create(
        issuer=issuer,
        public_key_pem=signing.canonical_pem(pub),
        fingerprint=signing.fingerprint(pub),
        valid_from=kw.pop("valid_from", timezone.now() - timedelta(days=1)),
        created_by=kw.pop("created_by", "system:test-installer"),
        **kw,
    )
    if approved:
        row = signing_key_approve(fingerprint=row.fingerprint, actor=Actor.system("test-approver"))
    return row


@pytest.fixture(autouse=True)
def _import_dir(settings: Any, tmp_path: Path) -> None:
    settings.INVENTORY_IMPORT_DIR = tmp_path / "imports"


@pytest.fixture
def pools(db: Any) -> dict[str, Any]:
    return {
        "general": InventoryPoolFactory(code="GENERAL_MSISDN", kind="MSISDN"),
        "standard": InventoryPoolFactory(code="STANDARD_SHORT_CODES", kind="SHORT_CODE"),
        "vanity": InventoryPoolFactory(code="VANITY_SHORT_CODES", kind="SHORT_CODE", vanity=True),
        "gov": InventoryPoolFactory(code="GOVERNMENT_RESERVED", kind="MSISDN", government_reserved=True),
    }


@pytest.fixture
def roshan(db: Any, pools: Any) -> Issuer:
    issuer = IssuerFactory(code="ROSHAN", msisdn_prefixes=["79", "72"])
    install_key(issuer, "roshan")
    return issuer


@pytest.fixture
def atra(db: Any, pools: Any) -> Issuer:
    issuer = IssuerFactory(code="ATRA", kind=Issuer.Kind.REGULATOR, msisdn_prefixes=[])
    install_key(issuer, "atra")
    return issuer


@pytest.fixture
def system() -> Actor:
    return Actor.system("test-import")


@pytest.fixture
def inventory_snapshot(db: Any) -> Callable[[], tuple[int, int, int]]:
    def snap() -> tuple[int, int, int]:
        return Number.objects.count(), NumberBlock.objects.count(), OutboxEvent.objects.count()

    return snap


@pytest.fixture
def tmp_files(tmp_path: Path) -> Iterator[Callable[[Signed], tuple[Path, Path]]]:
    def write(signed: Signed) -> tuple[Path, Path]:
        csv_file, sig = tmp_path / "inventory.csv", tmp_path / "inventory.csv.sig"
        csv_file.write_bytes(signed.csv)
        sig.write_bytes(signed.signature)
        return csv_file, sig

    yield write
