"""The chaos drill's probe (bench/chaos/run.py): answers one question a line, as JSON, about
the drill's database and Redis, through the project's own models and settings.

    pending    -> unpublished outbox events
    events     -> {event_id: aggregate_id} of every outbox event
    converged  -> [ok, detail]: Redis resynced for this incarnation and no entry disagrees
                  with PostgreSQL (missing entries are fine: a miss reads PostgreSQL, ADR 1200)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import close_old_connections, transaction  # noqa: E402

from core import redis_client  # noqa: E402
from core.models import OutboxEvent  # noqa: E402
from core.rls import rls_scope  # noqa: E402
from numbering import lease_cache  # noqa: E402
from numbering.models import Number  # noqa: E402


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
    info = client.info("memory")
    out["used_memory"] = info["used_memory"]
    out["keys"] = client.dbsize()
    out["evicted_keys"] = client.info("stats")["evicted_keys"]
    return out


ANSWERS: dict[str, Any] = {
    "pending": pending,
    "lag": lag,
    "events": events,
    "converged": converged,
    "sizing": sizing,
}

if __name__ == "__main__":
    for line in sys.stdin:
        close_old_connections()
        try:
            answer = ANSWERS[line.strip()]()
        except Exception as exc:  # noqa: BLE001 - the drill reads the failure as an answer
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
