"""The chaos drill's probe (bench/chaos/run.py): answers one question a line, as JSON, about
the drill's database and Redis, through the project's own models and settings.

    pending    -> unpublished outbox events
    events     -> {event_id: aggregate_id} of every outbox event
    converged  -> [ok, detail]: Redis resynced for this incarnation and no entry disagrees
                  with PostgreSQL (missing entries are fine: a miss reads PostgreSQL, ADR 1200)
    plant N TTL -> N reservations on numbers of their own (never the mix's), expiring in TTL s
    planted    -> the planted numbers' states and how many expiry events each has
    planted_ttl_keys -> how many planted reservations still have their TTL key in Redis
    sizing     -> bytes per cached key kind, the bookkeeping keys present, keys without a TTL
    import N   -> a signed N-row inventory import, queued to the Celery worker (async)
    imported   -> that import's status, counts, and its audit and outbox events
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import close_old_connections, transaction  # noqa: E402

from contracts.models import Issuer  # noqa: E402
from core import redis_client  # noqa: E402
from core.actors import Actor  # noqa: E402
from core.models import OutboxEvent  # noqa: E402
from core.rls import rls_scope  # noqa: E402
from numbering import lease_cache, services  # noqa: E402
from numbering.models import Number  # noqa: E402
from pools.models import InventoryPool, Tenant  # noqa: E402


def pending() -> int:
    with transaction.atomic(), rls_scope(platform=True):
        return OutboxEvent.objects.filter(published_at__isnull=True).count()


def lag() -> float:
    """Age in seconds of the oldest unpublished outbox event (0 when none): under load a few
    events are always in flight, so "drained" means this age is back to about a second."""
    from django.db.models import Min

    from core import clock

    with transaction.atomic(), rls_scope(platform=True):
        oldest = OutboxEvent.objects.filter(published_at__isnull=True).aggregate(m=Min("created_at"))["m"]
    return 0.0 if oldest is None else max(0.0, (clock.now() - oldest).total_seconds())


def events() -> dict[str, str]:
    with transaction.atomic(), rls_scope(platform=True):
        return {str(e): a for e, a in OutboxEvent.objects.values_list("event_id", "aggregate_id")}


def converged() -> tuple[bool, str]:
    client = redis_client.new_client()
    if not client.exists(redis_client.lease_synced_key()):
        return False, "not resynced yet"
    with transaction.atomic(), rls_scope(platform=True):
        expected = {n: str(t) for n, t in Number.objects.filter(state="ASSIGNED").values_list("number", "tenant_id")}
    checked = wrong = 0
    for numbers in lease_cache.scan_numbers(client):
        for number in numbers:
            value = lease_cache.read_value(number, client)
            if value is None:
                continue
            checked += 1
            entry = value[2]
            holder = str(entry.get("tenant_id")) if entry.get("state") == "ASSIGNED" else None
            if holder != expected.get(number):
                wrong += 1
    return wrong == 0, f"{checked} entries present, {wrong} disagree with PostgreSQL"


def sizing() -> dict[str, Any]:
    """Bytes per key kind (MEMORY USAGE over a sample), for the cache server's sizing."""
    client = redis_client.new_client()
    patterns = {
        "lease_entry": redis_client.lease_entry_pattern(),
        "idempotency_copy": redis_client.IDEMPOTENCY_PREFIX + "*",
        "reservation_ttl": settings.RESERVATION_TTL_PREFIX + "[+0-9]*",
    }
    out: dict[str, Any] = {}
    for kind, pattern in patterns.items():
        sizes = []
        for key in client.scan_iter(match=pattern, count=500):
            sizes.append(int(client.memory_usage(key) or 0))
            if len(sizes) >= 300:
                break
        out[kind] = {"sampled": len(sizes), "bytes_avg": round(sum(sizes) / len(sizes)) if sizes else None}
    # The cache's bookkeeping must outlive any pressure (ADR 1507): present, and the only keys
    # without a TTL (volatile-lru evicts every other key, never these).
    permanent = redis_client.permanent_keys()
    out["permanent_present"] = [key for key in permanent if client.exists(key)]
    out["no_ttl_other"] = [
        key.decode() for key in client.scan_iter(count=1000) if key.decode() not in permanent and client.ttl(key) == -1
    ][:20]
    info = client.info("memory")
    out["used_memory"] = info["used_memory"]
    out["keys"] = client.dbsize()
    out["evicted_keys"] = client.info("stats")["evicted_keys"]
    return out


# --- celery-worker-kill (ADR 1502) -------------------------------------------------------------

PLANT_PREFIX = "+93794"  # the mix owns +93796/+93797/+93798; the drill's own numbers live here
IMPORT_PREFIX = "+93795"
DRILL = Actor.system("chaos-drill")
_state: dict[str, Any] = {"planted": [], "import_id": None}


def plant(count: str = "20", ttl: str = "5") -> list[str]:
    """Reservations that go overdue in `ttl` seconds. Made through the service (audit, outbox,
    TTL key), on numbers created for them, for one of the mix's tenants."""
    with transaction.atomic(), rls_scope(platform=True):
        issuer = Issuer.objects.get(code="ROSHAN")
        pool = InventoryPool.objects.get(code="MIX_MSISDN")
        tenant = Tenant.objects.filter(tenant_pool__inventory_pools=pool).order_by("created_at").first()
        assert tenant is not None, "no mix tenant"
        start = Number.objects.filter(number__startswith=PLANT_PREFIX).count()
        numbers = [f"{PLANT_PREFIX}{start + i:06d}" for i in range(int(count))]
        Number.objects.bulk_create(Number(number=n, kind="MSISDN", issuer=issuer, pool=pool) for n in numbers)
    for number in numbers:
        services.number_reserve(number=number, tenant_id=tenant.id, actor=DRILL, ttl_seconds=int(ttl))
    _state["planted"] += numbers
    return numbers


def planted_ttl_keys() -> int:
    """How many planted reservations still have their TTL key in Redis."""
    planted_numbers = set(_state["planted"])
    keys = redis_client.new_client().scan_iter(match=settings.RESERVATION_TTL_PREFIX + "*", count=1000)
    parsed = (redis_client.parse_reservation_ttl_key(key) for key in keys)
    return sum(1 for found in parsed if found and found[0] in planted_numbers)


def planted() -> dict[str, Any]:
    numbers = _state["planted"]
    with transaction.atomic(), rls_scope(platform=True):
        states = Counter(Number.objects.filter(number__in=numbers).values_list("state", flat=True))
        expiries = Counter(
            OutboxEvent.objects.filter(
                aggregate_id__in=numbers, event_type="numbering.number.available.v1"
            ).values_list("aggregate_id", flat=True)
        )
    return {"states": dict(states), "expiry_events": {n: expiries.get(n, 0) for n in numbers}}


def queue_import(rows: str = "100000") -> int:
    """A signed import of `rows` new numbers, dispatched as the REST upload does: queued to the
    Celery worker (INVENTORY_IMPORT_ASYNC, set by the drill)."""
    from contracts import signing
    from contracts.imports import import_create
    from contracts.models import SigningKey
    from contracts.services import import_dispatch, signing_key_add, signing_key_approve

    key = signing.generate_private_key()
    fingerprint = signing.fingerprint(key.public_key())
    signing_key_add(issuer_code="ROSHAN", public_key_pem=signing.public_pem(key), actor=DRILL)
    signing_key_approve(fingerprint=fingerprint, actor=Actor.system("chaos-drill-approver"))
    assert SigningKey.objects.filter(fingerprint=fingerprint, approved_at__isnull=False).exists()
    with transaction.atomic(), rls_scope(platform=True):
        InventoryPool.objects.get_or_create(code="GENERAL_MSISDN", defaults={"name": "General", "kind": "MSISDN"})
        start = Number.objects.filter(number__startswith=IMPORT_PREFIX).count()
    body = "number,kind,vanity_tier,block,pool\n" + "".join(
        f"{IMPORT_PREFIX}{start + i:06d},MSISDN,,ROSHAN-CHAOS-2026-12,\n" for i in range(int(rows))
    )
    data = body.encode()
    imp = import_create(
        issuer_code="ROSHAN", csv_file=data, signature=signing.sign(key, data), actor=DRILL, filename="chaos.csv"
    )
    assert settings.INVENTORY_IMPORT_ASYNC, "the drill queues the import to the worker"
    assert import_dispatch(imp.pk, actor=DRILL) is None, "the import ran here instead of in the worker"
    _state["import_id"] = imp.pk
    return int(imp.pk)


def imported() -> dict[str, Any]:
    from audit.models import AuditEvent
    from contracts.imports import EVENT_COMPLETED
    from contracts.models import InventoryImport

    pk = _state["import_id"]
    imp = InventoryImport.objects.get(pk=pk)
    with transaction.atomic(), rls_scope(platform=True):
        numbers = Number.objects.filter(number__startswith=IMPORT_PREFIX).count()
        audits = AuditEvent.objects.filter(action="inventory.import", object_id=f"import:{pk}").count()
        events = OutboxEvent.objects.filter(event_type=EVENT_COMPLETED, aggregate_id=f"import:{pk}").count()
    return {
        "status": imp.status,
        "accepted": imp.accepted_count,
        "total": imp.total_rows,
        "error": imp.error[:200],
        "numbers": numbers,
        "audit_events": audits,
        "outbox_events": events,
    }


ANSWERS: dict[str, Any] = {
    "pending": pending,
    "lag": lag,
    "events": events,
    "converged": converged,
    "sizing": sizing,
    "plant": plant,
    "planted": planted,
    "planted_ttl_keys": planted_ttl_keys,
    "import": queue_import,
    "imported": imported,
}

if __name__ == "__main__":
    for line in sys.stdin:
        close_old_connections()
        try:
            question, *words = line.split()
            answer = ANSWERS[question](*words)
        except Exception as exc:  # noqa: BLE001 - the drill reads the failure as an answer
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
