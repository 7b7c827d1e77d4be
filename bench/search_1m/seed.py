"""1,000,000 numbers for the search bench (issue 11 item 5), through the documented bulk path.

The bulk path: one `INSERT … SELECT … FROM generate_series` per batch as the app role in
platform scope, into numbering_number with every constraint, trigger and RLS check in force
(COPY FROM is refused on a table with row-level security), then numbering_analyze_numbers()
(ANALYZE through the owner's function: autovacuum may be off). One inventory pool; TENANTS
tenants entitled to it with room in their quota; numbers +9379 0000000 … (90 % AVAILABLE,
the rest RETIRED; every 50th a GOLD vanity number; every 97th AVAILABLE one PLATINUM).
Writes tenant ids and JWTs as JSON to the path given.

    python bench/search_1m/seed.py OUT.json --numbers 1000000 --tenants 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from contracts.models import Issuer  # noqa: E402
from core.api.auth import issue_token  # noqa: E402
from core.api.devkeys import ensure_dev_keys  # noqa: E402
from core.authz import TENANT_ADMIN  # noqa: E402
from core.rls import rls_scope  # noqa: E402
from pools.models import InventoryPool, Tenant, TenantPool  # noqa: E402

PREFIX = "+9379"
BATCH = 250_000

INSERT = """
INSERT INTO numbering_number (number, kind, vanity, vanity_tier, is_test, state, version,
                              state_changed_at, created_at, issuer_id, pool_id)
SELECT %(prefix)s || lpad(g::text, 7, '0'), 'MSISDN',
       g %% 50 = 0 OR (g %% 97 = 0 AND g %% 10 <> 9),
       CASE WHEN g %% 50 = 0 THEN 'GOLD' WHEN g %% 97 = 0 AND g %% 10 <> 9 THEN 'PLATINUM' ELSE '' END,
       false, CASE WHEN g %% 10 = 9 AND g %% 50 <> 0 THEN 'RETIRED' ELSE 'AVAILABLE' END, 1, now(), now(),
       %(issuer)s, %(pool)s
FROM generate_series(%(lo)s, %(hi)s) g
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--token-ttl", type=int, default=7200)
    args = parser.parse_args()
    if args.numbers > 9_999_999:
        raise SystemExit("the bench's number range holds 9,999,999 numbers")
    run = uuid.uuid4().hex[:6]
    t0 = time.monotonic()
    with transaction.atomic(), rls_scope(platform=True):
        issuer, _ = Issuer.objects.get_or_create(
            code="ROSHAN", defaults={"name": "Roshan", "kind": "MNO", "msisdn_prefixes": ["79", "72"]}
        )
        pool, _ = InventoryPool.objects.get_or_create(code="S1M", defaults={"name": "Search 1M", "kind": "MSISDN"})
        tenants = []
        for i in range(args.tenants):
            tenant = Tenant.objects.create(name=f"Search tenant {run}-{i}", registration_no=f"S1M-{run}-{i}")
            tp = TenantPool.objects.create(tenant=tenant, quota_msisdn=1_000_000, default_lease_days=365)
            tp.inventory_pools.set([pool])
            tenants.append(tenant)
    for lo in range(0, args.numbers, BATCH):
        hi = min(lo + BATCH, args.numbers) - 1
        with transaction.atomic(), rls_scope(platform=True), connection.cursor() as cur:
            cur.execute(INSERT, {"prefix": PREFIX, "issuer": issuer.id, "pool": pool.id, "lo": lo, "hi": hi})
        print(f"[search1m-seed] {hi + 1:,} numbers ({time.monotonic() - t0:.1f}s)", file=sys.stderr)
    with connection.cursor() as cur:
        cur.execute("SELECT numbering_analyze_numbers()")
    print(f"[search1m-seed] analyzed ({time.monotonic() - t0:.1f}s)", file=sys.stderr)

    keys = ensure_dev_keys(settings.JWT_DEV_DIR)
    pem = keys.private_key_path.read_bytes()
    ttl = min(args.token_ttl, settings.JWT_MAX_LIFETIME_SECONDS)
    data = {
        "prefix": PREFIX,
        "numbers": args.numbers,
        "tenants": [
            {
                "id": str(t.id),
                "token": issue_token(
                    private_key_pem=pem,
                    kid=keys.kid,
                    subject=f"search-{t.registration_no}",
                    role_names=[TENANT_ADMIN],
                    tenant_id=str(t.id),
                    ttl_seconds=ttl,
                ),
            }
            for t in tenants
        ],
    }
    args.out.write_text(json.dumps(data))


if __name__ == "__main__":
    main()
