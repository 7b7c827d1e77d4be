"""Bench dataset for ValidateLease, built through the real services in the bench database.

TENANTS tenants, each holding PER_TENANT assigned MSISDNs (leases via number_assign), plus
AVAILABLE numbers. Idempotent: an already seeded database is left alone. Prints the
dataset as JSON lines (number, tenant_id, expected reason) for the runner.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

from django.db import transaction  # noqa: E402

from contracts.models import Issuer  # noqa: E402
from core.actors import Actor  # noqa: E402
from core.rls import rls_scope  # noqa: E402
from numbering import services  # noqa: E402
from numbering.models import Number  # noqa: E402
from pools.models import InventoryPool, Tenant, TenantPool  # noqa: E402

TENANTS = int(os.environ.get("BENCH_TENANTS", "40"))
PER_TENANT = int(os.environ.get("BENCH_NUMBERS_PER_TENANT", "50"))
AVAILABLE = int(os.environ.get("BENCH_AVAILABLE", "200"))
OPS = Actor.system("bench-seed")


def seed() -> None:
    with transaction.atomic(), rls_scope(platform=True):
        if Number.objects.filter(number__startswith="+93795").exists():
            return
        issuer, _ = Issuer.objects.get_or_create(
            code="ROSHAN", defaults={"name": "Roshan", "kind": "MNO", "msisdn_prefixes": ["79", "72"]}
        )
        pool, _ = InventoryPool.objects.get_or_create(code="BENCH_MSISDN", defaults={"name": "Bench", "kind": "MSISDN"})
        tenants = []
        for i in range(TENANTS):
            tenant = Tenant.objects.create(name=f"Bench tenant {i}", registration_no=f"BENCH-{i:05d}", segment="SMB")
            tp = TenantPool.objects.create(tenant=tenant, quota_msisdn=PER_TENANT + 10, default_lease_days=365)
            tp.inventory_pools.set([pool])
            tenants.append(tenant)
        total = TENANTS * PER_TENANT + AVAILABLE
        Number.objects.bulk_create(
            Number(number=f"+93795{i:06d}", kind="MSISDN", issuer=issuer, pool=pool) for i in range(total)
        )
    for i in range(TENANTS * PER_TENANT):
        services.number_assign(number=f"+93795{i:06d}", tenant_id=tenants[i % TENANTS].id, actor=OPS)
        if i % 500 == 0:
            print(f"[seed] assigned {i}/{TENANTS * PER_TENANT}", file=sys.stderr)


def dataset() -> list[dict[str, str]]:
    with transaction.atomic(), rls_scope(platform=True):
        rows = list(Number.objects.filter(number__startswith="+93795").values_list("number", "state", "tenant_id"))
        tenant_ids = [
            str(t) for t in Tenant.objects.filter(registration_no__startswith="BENCH-").values_list("id", flat=True)
        ]
    out = []
    for number, state, tenant_id in rows:
        if state == "ASSIGNED":
            out.append({"number": number, "tenant_id": str(tenant_id), "expect": "OK"})
            other = next(t for t in tenant_ids if t != str(tenant_id))
            out.append({"number": number, "tenant_id": other, "expect": "WRONG_TENANT"})
        else:
            out.append({"number": number, "tenant_id": tenant_ids[0], "expect": "NOT_ASSIGNED"})
    out.append({"number": "+93799999999", "tenant_id": tenant_ids[0], "expect": "UNKNOWN_NUMBER"})
    return out


if __name__ == "__main__":
    seed()
    for row in dataset():
        print(json.dumps(row))
