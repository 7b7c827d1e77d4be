"""Bounded memory of the regulator export: seed N numbers (default 1 000 000) in the dev
database and stream the period-end CSV to a temp file, reporting time and peak RSS.

    DJANGO_SETTINGS_MODULE=config.settings.base .venv/bin/python bench/export_1m.py [N]

Not part of the test run. Seeds with one INSERT ... SELECT generate_series (as the owner,
in platform RLS scope) and deletes its rows afterwards."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time

import django

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

from django.db import connections, transaction  # noqa: E402

from core.periods import previous_period  # noqa: E402
from exports.report import write_regulator_csv  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
PREFIX = "+93700"


def seed() -> None:
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cur:
        cur.execute("SELECT set_config('app.scope', 'platform', true)")
        cur.execute(
            "INSERT INTO contracts_issuer (code, name, kind, msisdn_prefixes, created_at)"
            " VALUES ('BENCH', 'Bench', 'MNO', '{70}', now()) ON CONFLICT (code) DO NOTHING"
        )
        cur.execute("SELECT id FROM contracts_issuer WHERE code = 'BENCH'")
        (issuer,) = cur.fetchone()
        cur.execute(
            "INSERT INTO numbering_number (number, kind, issuer_id, vanity, vanity_tier, is_test, state, version,"
            " state_changed_at, created_at) SELECT %s || lpad(g::text, 7, '0'), 'MSISDN', %s, false, '', false,"
            " 'AVAILABLE', 1, now(), now() - interval '400 days' FROM generate_series(1, %s) g"
            " ON CONFLICT (number) DO NOTHING",
            [PREFIX, issuer, N],
        )


def cleanup() -> None:
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cur:
        cur.execute("SELECT set_config('app.scope', 'platform', true)")
        cur.execute("DELETE FROM numbering_number WHERE number LIKE %s", [PREFIX + "%"])


def main() -> None:
    started = time.monotonic()
    seed()
    print(f"seeded {N} numbers in {time.monotonic() - started:.1f}s", flush=True)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        started = time.monotonic()
        with tempfile.TemporaryFile() as tmp:
            result = write_regulator_csv(previous_period(), tmp)
        elapsed = time.monotonic() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(
            f"exported {result.row_count} rows, {result.size / 1e6:.1f} MB in {elapsed:.1f}s;"
            f" peak RSS {peak / 1024:.0f} MiB (before export {rss_before / 1024:.0f} MiB)"
        )
    finally:
        cleanup()


if __name__ == "__main__":
    main()
