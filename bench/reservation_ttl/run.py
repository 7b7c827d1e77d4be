"""Reservation expiry precision (issue 6): reserve ≥ 200 numbers with short TTLs, listener on,
and measure reserved_until → the moment the number was AVAILABLE again.

Usage (against your own database/Redis; not part of `make test`):

    DATABASE_URL=... DATABASE_OWNER_URL=... REDIS_URL=... \\
        .venv/bin/python bench/reservation_ttl/run.py --count 200 --min-ttl 2 --max-ttl 12

It starts `manage.py run_reservation_expiry_listener` as a separate process (as in
production), creates a bench tenant and N fresh numbers, reserves them with TTLs spread
over [min, max] seconds, waits until every one is AVAILABLE, and reads the moment of the
change from the number row (state_changed_at, set in the expiring transaction) and who did
it (audit actor: listener or safety net). Appends a line to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

import django  # noqa: E402

django.setup()

from _support import bench_tenant_with_numbers, percentile  # noqa: E402
from django.db import transaction  # noqa: E402

from audit.models import AuditEvent  # noqa: E402
from core.actors import Actor  # noqa: E402
from core.rls import rls_scope  # noqa: E402
from numbering import services  # noqa: E402
from numbering.models import Number  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--min-ttl", type=int, default=2)
    parser.add_argument("--max-ttl", type=int, default=12)
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    env = {**os.environ, "RESERVATION_EXPIRY_METRICS_PORT": "0", "LOG_LEVEL": "WARNING"}
    listener = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "run_reservation_expiry_listener"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)  # subscribed (and its start-up catch-up done)
        tenant, numbers = bench_tenant_with_numbers(
            args.count, pool_code="BENCH_TTL", pool_name="Bench TTL", reservation_ttl_seconds=900
        )
        actor = Actor.system("bench")
        deadlines: dict[str, datetime] = {}
        started = time.monotonic()
        for n in numbers:
            ttl = random.randint(args.min_ttl, args.max_ttl)  # noqa: S311
            result = services.number_reserve(number=n, tenant_id=tenant.id, actor=actor, ttl_seconds=ttl)
            deadlines[n] = datetime.fromisoformat(result.number["reserved_until"])
        reserve_seconds = time.monotonic() - started
        deadline = time.monotonic() + args.max_ttl + 60
        while time.monotonic() < deadline:
            with transaction.atomic(), rls_scope(platform=True):
                left = Number.objects.filter(number__in=numbers, state="RESERVED").count()
            if left == 0:
                break
            time.sleep(0.5)
        with transaction.atomic(), rls_scope(platform=True):
            rows = dict(
                Number.objects.filter(number__in=numbers, state="AVAILABLE").values_list("number", "state_changed_at")
            )
        actors = dict(
            AuditEvent.objects.filter(object_id__in=numbers, action="expire_reservation").values_list(
                "object_id", "actor"
            )
        )
    finally:
        listener.terminate()
        listener.wait(10)

    deltas = [(rows[n] - deadlines[n]).total_seconds() for n in numbers if n in rows]
    missing = len(numbers) - len(deltas)
    by_listener = sum(1 for n in numbers if actors.get(n) == "system:reservation-expiry-listener")
    p50, p95, p99 = (percentile(deltas, p) for p in (50, 95, 99))
    summary = (
        f"n={len(numbers)} expired={len(deltas)} not_expired={missing} by_listener={by_listener} "
        f"delay_s p50={p50:.3f} p95={p95:.3f} p99={p99:.3f} min={min(deltas):.3f} max={max(deltas):.3f} "
        f"mean={statistics.mean(deltas):.3f} (TTL {args.min_ttl}-{args.max_ttl}s, reserve phase {reserve_seconds:.1f}s)"
    )
    print(summary)
    verdict = "PASS" if abs(p99) <= 2.0 and missing == 0 else "FAIL"
    print(f"target |P99| <= 2 s: {verdict}")
    if not args.no_record:
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        machine = f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"
        command = (
            f".venv/bin/python bench/reservation_ttl/run.py --count {args.count}"
            f" --min-ttl {args.min_ttl} --max-ttl {args.max_ttl}"
        )
        results = ROOT / "bench" / "RESULTS.md"
        if not results.exists():
            results.write_text("# Benchmark results\n\nAppend-only; newest last.\n")
        with results.open("a") as fh:
            fh.write(
                f"\n## reservation TTL expiry precision — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
                f"- machine: {machine}\n- command: `{command}` (listener as a separate process)\n"
                f"- result: {summary}\n- target ±2 s at P99: **{verdict}**\n"
            )


if __name__ == "__main__":
    main()
