"""What the bench scripts share: percentiles and a fresh bench tenant with free numbers.

Import after `django.setup()` (the scripts put the repository root on sys.path first).
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from django.db import transaction

from contracts.models import Issuer
from core.rls import rls_scope
from numbering.models import Number
from pools.models import InventoryPool, Tenant, TenantPool


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def bench_tenant_with_numbers(
    count: int, *, pool_code: str, pool_name: str, **tenant_pool: Any
) -> tuple[Tenant, list[str]]:
    """A new tenant entitled to the bench pool, and `count` AVAILABLE numbers no earlier run holds."""
    run = uuid.uuid4().hex[:8]
    with transaction.atomic(), rls_scope(platform=True):
        issuer, _ = Issuer.objects.get_or_create(
            code="BENCH", defaults={"name": "Bench", "kind": Issuer.Kind.MNO, "msisdn_prefixes": ["78"]}
        )
        pool, _ = InventoryPool.objects.get_or_create(
            code=pool_code, defaults={"name": pool_name, "kind": InventoryPool.Kind.MSISDN}
        )
        tenant = Tenant.objects.create(name=f"Bench {run}", registration_no=f"BENCH-{run}", segment="SMB")
        entitlement = TenantPool.objects.create(tenant=tenant, quota_msisdn=count + 10, **tenant_pool)
        entitlement.inventory_pools.add(pool)
        base = random.randrange(0, 9_000_000)  # noqa: S311 - just a free range of bench numbers
        wanted = [f"+9378{base + i:07d}" for i in range(count * 2)]
        taken = set(Number.objects.filter(number__in=wanted).values_list("number", flat=True))
        numbers = [n for n in wanted if n not in taken][:count]
        Number.objects.bulk_create(
            [Number(number=n, kind="MSISDN", issuer=issuer, pool=pool, state="AVAILABLE") for n in numbers]
        )
    return tenant, numbers
