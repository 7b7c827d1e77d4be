"""A 100 000-row import runs in bounded memory: measured as the peak RSS of a real
`manage.py import_inventory` process (the way ops run it), not estimated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from django.conf import settings
from django.db import connections, transaction

from core.rls import rls_scope
from numbering.models import Number
from tests.contracts.conftest import HEADER, install_key, sign_csv
from tests.factories import InventoryPoolFactory, IssuerFactory

# Runs the command as a child and reports that child's peak RSS (KiB on Linux).
WRAPPER = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(proc.stdout[-2000:], file=sys.stderr)
print(proc.stderr[-2000:], file=sys.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(proc.returncode)
"""


def _test_db_url(url: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path="/" + connections["default"].settings_dict["NAME"]))


def _import(tmp_path: Path, rows: int, start: int) -> tuple[int, str]:
    body = HEADER + "".join(f"+9379{start + i:07d},MSISDN,,BULK-{rows}\n" for i in range(rows))
    signed = sign_csv(body)
    csv_file, sig = tmp_path / f"bulk-{rows}.csv", tmp_path / f"bulk-{rows}.csv.sig"
    csv_file.write_bytes(signed.csv)
    sig.write_bytes(signed.signature)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _test_db_url(
            os.environ.get("DATABASE_URL", "postgres://numbering_app@127.0.0.1:5432/numbering")
        ),
        "DATABASE_OWNER_URL": _test_db_url(
            os.environ.get("DATABASE_OWNER_URL", "postgres://numbering_owner@127.0.0.1:5432/numbering")
        ),
        "DATABASE_TENANT_URL": "",  # derived from DATABASE_URL (the test database)
        "REDIS_URL": settings.REDIS_URL,
        "INVENTORY_IMPORT_DIR": str(tmp_path / "imports"),
        "COVERAGE_PROCESS_START": "",
    }
    command = [
        sys.executable,
        str(Path(settings.BASE_DIR) / "manage.py"),
        "import_inventory",
        "--issuer",
        "ROSHAN",
        "--csv",
        str(csv_file),
        "--signature",
        str(sig),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.mark.committed
def test_a_100k_row_import_completes_in_bounded_memory(committed, tmp_path):
    pool = InventoryPoolFactory(code="GENERAL_MSISDN", kind="MSISDN")
    install_key(IssuerFactory(code="ROSHAN", msisdn_prefixes=["79", "72"]), "roshan")
    small_kib, _ = _import(tmp_path, 5_000, start=0)
    big_kib, output = _import(tmp_path, 100_000, start=1_000_000)
    assert "imported 100000 number(s)" in output
    with transaction.atomic(), rls_scope(platform=True):
        assert Number.objects.filter(block__name="BULK-100000", pool=pool, state="AVAILABLE").count() == 100_000
    growth_mib = (big_kib - small_kib) / 1024
    report = {
        "rows_5k_peak_rss_mib": round(small_kib / 1024, 1),
        "rows_100k_peak_rss_mib": round(big_kib / 1024, 1),
        "growth_mib": round(growth_mib, 1),
    }
    out = Path(settings.BASE_DIR) / "test-output" / "import-memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    # Generous bounds: the whole process stays small, and 20x the rows costs almost no memory
    # (rows are streamed and copied to PostgreSQL in batches, never held as a list).
    assert big_kib / 1024 < 250, report
    assert growth_mib < 40, report
