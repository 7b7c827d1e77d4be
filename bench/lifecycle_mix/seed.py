"""The lifecycle-mix dataset, in the bench database, through the real services where it counts.

TENANTS tenants, each holding LEASES assigned numbers (number_assign: real leases, audit,
outbox, lease cache) and FREE available numbers that only it will touch (bulk insert, then
ANALYZE: autovacuum may be off). Writes the dataset (tenant ids and JWTs, leases, free
numbers, unknown numbers) as JSON to the path given.

    python bench/lifecycle_mix/seed.py OUT.json --tenants 20 --leases 100 --free 2000 --token-ttl 3600
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
from core.actors import Actor  # noqa: E402
from core.api.auth import issue_token  # noqa: E402
from core.api.devkeys import ensure_dev_keys  # noqa: E402
from core.authz import TENANT_ADMIN  # noqa: E402
from core.rls import rls_scope  # noqa: E402
from numbering import services  # noqa: E402
from numbering.models import Number  # noqa: E402
from pools.models import InventoryPool, Tenant, TenantPool  # noqa: E402

PREFIX = "+93796"  # Roshan's 79 range; the mix owns +93796xxxxxx in its own database
CRITERIA_PREFIX = "+93798"  # shared by every tenant: REST reserve-by-criteria contends here
OPS = Actor.system("bench-mix-seed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--leases", type=int, default=100, help="assigned numbers per tenant")
    parser.add_argument("--free", type=int, default=2000, help="available numbers per tenant")
    parser.add_argument("--criteria", type=int, default=2000, help="shared numbers for reserve-by-criteria")
    parser.add_argument("--token-ttl", type=int, default=3600)
    args = parser.parse_args()
    if args.tenants * (args.leases + args.free) > 999_999:
        raise SystemExit("the mix's number range holds 999,999 numbers")

    run = uuid.uuid4().hex[:6]
    with transaction.atomic(), rls_scope(platform=True):
        issuer, _ = Issuer.objects.get_or_create(
            code="ROSHAN", defaults={"name": "Roshan", "kind": "MNO", "msisdn_prefixes": ["79", "72"]}
        )
        pool, _ = InventoryPool.objects.get_or_create(code="MIX_MSISDN", defaults={"name": "Mix", "kind": "MSISDN"})
        start = Number.objects.filter(number__startswith=PREFIX).count()
        tenants = []
        for i in range(args.tenants):
            tenant = Tenant.objects.create(
                name=f"Mix tenant {run}-{i}", registration_no=f"MIX-{run}-{i}", segment="SMB"
            )
            tp = TenantPool.objects.create(
                tenant=tenant, quota_msisdn=args.leases + args.free + 10, default_lease_days=365
            )
            tp.inventory_pools.set([pool])
            tenants.append(tenant)
        per = args.leases + args.free
        numbers = [f"{PREFIX}{start + i:06d}" for i in range(args.tenants * per)]
        shared_start = Number.objects.filter(number__startswith=CRITERIA_PREFIX).count()
        shared = [f"{CRITERIA_PREFIX}{shared_start + i:06d}" for i in range(args.criteria)]
        Number.objects.bulk_create(
            (Number(number=n, kind="MSISDN", issuer=issuer, pool=pool) for n in numbers + shared), batch_size=5000
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT numbering_analyze_numbers()")

    leases: list[tuple[str, str]] = []
    free: dict[str, list[str]] = {}
    for t, tenant in enumerate(tenants):
        mine = numbers[t * per : (t + 1) * per]
        for n in mine[: args.leases]:
            services.number_assign(number=n, tenant_id=tenant.id, actor=OPS)
            leases.append((n, str(tenant.id)))
        free[str(tenant.id)] = mine[args.leases :]
        print(f"[mix-seed] tenant {t + 1}/{len(tenants)} leased {args.leases}", file=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute("SELECT numbering_analyze_numbers()")

    keys = ensure_dev_keys(settings.JWT_DEV_DIR)
    pem = keys.private_key_path.read_bytes()
    ttl = min(args.token_ttl, settings.JWT_MAX_LIFETIME_SECONDS)
    data = {
        "prefix": CRITERIA_PREFIX,
        "tenants": [
            {
                "id": str(t.id),
                "token": issue_token(
                    private_key_pem=pem,
                    kid=keys.kid,
                    subject=f"mix-{t.registration_no}",
                    role_names=[TENANT_ADMIN],
                    tenant_id=str(t.id),
                    ttl_seconds=ttl,
                ),
            }
            for t in tenants
        ],
        "leases": leases,
        "free": free,
        "unknown": [f"+93797{i:06d}" for i in range(0, 999_999, 9_973)],
    }
    args.out.write_text(json.dumps(data))


if __name__ == "__main__":
    main()
