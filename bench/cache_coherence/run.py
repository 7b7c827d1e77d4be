"""Lease-cache coherence bounds (issue 12, ADR 1200): how long until a committed change is in
every worker's ValidateLease answer, and how long after a Redis outage ends until Redis and
the workers' caches are back in step.

Usage (your own database; a private redis-server is started on a free port — CLIENT PAUSE
must never touch a shared Redis):

    DATABASE_URL=... DATABASE_OWNER_URL=... \\
        .venv/bin/python bench/cache_coherence/run.py --changes 200 --workers 2 --outages 5

Processes: `manage.py run_cache_sync` (a subprocess, as in production) and N LeaseLookup
instances in this process (each with its own pub/sub listener thread and local cache, the
gRPC worker's code minus the transport). Scenarios:

1. steady state: warm every worker, recall the number, time commit → every worker answers
   not-valid (the fast path and the durable path both on);
2. durable path only: the same with the after-commit write switched off (what happens when
   that write is lost): the cache-sync alone must deliver;
3. outage: CLIENT PAUSE <n> WRITE, recall during the pause (count valid=true answers given
   after the trust bound), then time pause end → Redis equals PostgreSQL and every worker
   trusts its cache again.

Appends a section to bench/RESULTS.md unless --no-record.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.db_wait import DatabaseThreads

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")


from bench.ports import free_port  # noqa: E402

REDIS_PORT = free_port()
os.environ["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from _support import bench_tenant_with_numbers, percentile  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402

from core.actors import Actor  # noqa: E402
from core.rls import rls_scope  # noqa: E402
from numbering import cache_epoch, lease_cache, services  # noqa: E402
from numbering.lease_lookup import LeaseLookup  # noqa: E402
from numbering.models import Number  # noqa: E402
from pools.models import Tenant  # noqa: E402

OPS = Actor.user("bench.ops", roles=frozenset({"commerce.ops"}))


def setup(count: int) -> tuple[Tenant, list[str]]:
    tenant, numbers = bench_tenant_with_numbers(count, pool_code="BENCH_CACHE", pool_name="Bench cache")
    for n in numbers:
        services.number_reserve(number=n, tenant_id=tenant.id, actor=OPS)
        services.number_assign(number=n, tenant_id=tenant.id, actor=OPS)
    return tenant, numbers


class Workers:
    def __init__(self, count: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.lookups = [LeaseLookup(threads=DatabaseThreads(2)) for _ in range(count)]
        for lookup in self.lookups:
            lookup.start()

    def wait_trusted(self, timeout: float = 30) -> bool:
        return all(lookup.wait_trusted(timeout) for lookup in self.lookups)

    def valid(self, lookup: LeaseLookup, number: str, tenant: str) -> bool:
        return self.loop.run_until_complete(lookup.validate(number, tenant)).valid

    def close(self) -> None:
        for lookup in self.lookups:
            self.loop.run_until_complete(lookup.close())


def propagation(workers: Workers, numbers: list[str], tenant: str, *, fast_path: bool) -> list[float]:
    """Commit → every worker answers not-valid, per number (seconds)."""
    original = lease_cache.refresh_after_commit
    if not fast_path:
        lease_cache.refresh_after_commit = lambda snapshot: None  # type: ignore[assignment]
    out: list[float] = []
    try:
        for number in numbers:
            for lookup in workers.lookups:
                for _ in range(2):
                    workers.valid(lookup, number, tenant)  # warm: local entry
            services.number_recall(number=number, actor=OPS, reason="FRAUD")
            committed = time.monotonic()
            pending = set(range(len(workers.lookups)))
            deadline = committed + 30
            while pending and time.monotonic() < deadline:
                for i in list(pending):
                    if not workers.valid(workers.lookups[i], number, tenant):
                        pending.discard(i)
                if pending:
                    time.sleep(0.0005)
            out.append(time.monotonic() - committed if not pending else float("inf"))
    finally:
        lease_cache.refresh_after_commit = original  # type: ignore[assignment]
    return out


def outage(workers: Workers, client: redis.Redis, number: str, tenant: str, pause_ms: int) -> tuple[float, int]:
    """(pause end → Redis == PostgreSQL and every worker trusted, valid answers past the bound)."""
    for lookup in workers.lookups:
        workers.valid(lookup, number, tenant)
    client.execute_command("CLIENT", "PAUSE", str(pause_ms), "WRITE")
    paused = time.monotonic()
    services.number_recall(number=number, actor=OPS, reason="FRAUD")
    recalled = time.monotonic()
    bound = settings.LEASE_CACHE_TRUST_MS / 1000
    late_valid = 0
    while time.monotonic() < paused + pause_ms / 1000:
        for lookup in workers.lookups:
            if workers.valid(lookup, number, tenant) and time.monotonic() - recalled > bound:
                late_valid += 1
        time.sleep(0.005)
    ended = paused + pause_ms / 1000
    with transaction.atomic(), rls_scope(platform=True):
        version = Number.objects.get(number=number).version
    epoch = cache_epoch.read()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        value = lease_cache.read_value(number, client)
        if value and value[0] == version and value[1] == epoch and all(lk.trusted for lk in workers.lookups):
            break
        time.sleep(0.002)
    return time.monotonic() - ended, late_valid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--outages", type=int, default=5)
    parser.add_argument("--pause-ms", type=int, default=3000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is required")
    tmp = tempfile.mkdtemp(prefix="bench-cache-")
    redis_proc = subprocess.Popen(  # noqa: S603
        [binary, "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    env = {**os.environ, "LEASE_CACHE_SYNC_METRICS_PORT": "0", "LOG_LEVEL": "WARNING"}
    sync = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "run_cache_sync"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    workers = Workers(args.workers)
    load = os.getloadavg()[0]
    try:
        tenant, numbers = setup(args.changes * 2 + args.outages)
        assert workers.wait_trusted(), "workers never trusted their caches (is the cache-sync running?)"
        steady = propagation(workers, numbers[: args.changes], str(tenant.id), fast_path=True)
        durable = propagation(workers, numbers[args.changes : args.changes * 2], str(tenant.id), fast_path=False)
        outages = [outage(workers, client, n, str(tenant.id), args.pause_ms) for n in numbers[args.changes * 2 :]]
    finally:
        workers.close()
        sync.terminate()
        sync.wait(10)
        redis_proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    def row(name: str, values: list[float]) -> str:
        ms = [v * 1000 for v in values]
        return f"| {name} | {len(ms)} | {percentile(ms, 50):.1f} | {percentile(ms, 99):.1f} | {max(ms):.1f} |"

    converge = [c for c, _ in outages]
    late = sum(v for _, v in outages)
    lines = [
        "| measurement | n | P50 ms | P99 ms | max ms |",
        "|---|---|---|---|---|",
        row("commit → every worker not-valid (fast path + cache-sync)", steady),
        row("commit → every worker not-valid (cache-sync only; after-commit write off)", durable),
        row(
            f"Redis write outage ({args.pause_ms} ms CLIENT PAUSE WRITE) end → Redis = PostgreSQL, all trusted",
            converge,
        ),
    ]
    verdict = (
        f"bounds (ADR 1200): steady P99 ≤ 1000 ms: {'PASS' if percentile(steady, 99) <= 1 else 'FAIL'}; "
        f"durable-only P99 ≤ 1000 ms: {'PASS' if percentile(durable, 99) <= 1 else 'FAIL'}; "
        f"after outage ≤ 5000 ms: {'PASS' if max(converge) <= 5 else 'FAIL'}; "
        f"valid=true past the {settings.LEASE_CACHE_TRUST_MS} ms trust bound during outages: {late}"
    )
    print("\n".join(lines))
    print(verdict)
    if not args.no_record:
        with (ROOT / "bench" / "RESULTS.md").open("a") as out:
            out.write(
                "\n## Lease-cache coherence (issue 12, ADR 1200) — "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
                f"- command: `make bench-cache` → `bench/cache_coherence/run.py --changes {args.changes} "
                f"--workers {args.workers} --outages {args.outages} --pause-ms {args.pause_ms}`\n"
                f"- machine: nproc={os.cpu_count()}, {platform.platform()}; load average at start: {load:.2f} "
                "(shared with other engineers' test runs)\n"
                f"- heartbeat {settings.LEASE_CACHE_HEARTBEAT_MS} ms, trust bound {settings.LEASE_CACHE_TRUST_MS} ms; "
                f"{args.workers} LeaseLookup workers (own listener + local cache each), run_cache_sync subprocess, "
                "private redis-server\n\n" + "\n".join(lines) + f"\n\n{verdict}\n"
            )


if __name__ == "__main__":
    main()
