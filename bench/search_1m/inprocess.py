"""CPU per tenant search request in-process (no gunicorn, no network client): the search
code's own cost, to compare two versions of it side by side.

    python bench/search_1m/inprocess.py [--requests 200] [--profile [--sort tottime]]

Runs against the database `bench/search_1m/run.py` seeded (run it once first, or with
--reuse, within the seeded tokens' lifetime: an expired token answers 401, so
reseed without --reuse); DEBUG off, as in production. Django's test client calls the tenant search for
each operation of run.py (prefix, pattern, tier, kind) with the seeded tenants' tokens and
prints the process CPU and wall time per request. --profile adds a cProfile of one more round
(CPU time, sorted by --sort).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.lifecycle_mix.stack import OUT, Stack  # noqa: E402
from bench.search_1m.run import Load  # noqa: E402

OPERATIONS = ("prefix", "pattern", "tier", "kind", "reserve")  # reserve: reserve-by-criteria, count 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="per operation")
    parser.add_argument("--ops", default="prefix,pattern,tier,kind", help=f"some of {','.join(OPERATIONS)}")
    parser.add_argument("--profile", action="store_true", help="cProfile one more round, timing process CPU")
    parser.add_argument("--sort", default="cumulative", help="the profile's order (cumulative, tottime, ...)")
    args = parser.parse_args()

    stack = Stack(db_suffix="search1m")
    dataset = OUT / f"{stack.db_name}-dataset.json"
    if not dataset.exists():
        raise SystemExit(f"{dataset} is missing: run bench/search_1m/run.py first")
    os.environ.update(stack.env, DJANGO_DEBUG="0")
    import django

    django.setup()
    from django.test import Client

    data = json.loads(dataset.read_text())
    client = Client(SERVER_NAME="localhost")
    requests_of = Load("", data, seed=3)  # the same queries the gunicorn bench offers

    def call(op: str) -> None:
        token = requests_of.rng.choice(data["tenants"])["token"]
        if op == "reserve":  # takes one number of the seeded million each time
            _, path, body = requests_of.request_for("reserve.criteria")
            response = client.post(
                path,
                json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            )
            if response.status_code != 201:
                raise SystemExit(f"{op}: HTTP {response.status_code} {response.content[:300]!r}")
            return
        _, path, _ = requests_of.request_for(f"search.{op}")
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        if response.status_code != 200:
            raise SystemExit(f"{op}: HTTP {response.status_code} {response.content[:300]!r}")

    operations = [op for op in args.ops.split(",") if op]
    unknown = set(operations) - set(OPERATIONS)
    if unknown:
        raise SystemExit(f"--ops: unknown {sorted(unknown)}; choose from {', '.join(OPERATIONS)}")
    for op in operations:  # warm-up: connections, caches, imports
        for _ in range(20):
            call(op)
    for op in operations:
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.requests):
            call(op)
        cpu_ms = 1000 * (time.process_time() - cpu) / args.requests
        wall_ms = 1000 * (time.perf_counter() - wall) / args.requests
        print(f"{op}: cpu {cpu_ms:.2f} ms wall {wall_ms:.2f} ms per request")
    if args.profile:
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for op in operations:
            for _ in range(args.requests // 4 or 1):
                call(op)
        profile.disable()
        pstats.Stats(profile).sort_stats(args.sort).print_stats(50)


if __name__ == "__main__":
    main()
