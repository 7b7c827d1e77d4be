"""Tenant search and reserve-by-criteria on 1,000,000 numbers under gunicorn (issue 11 item 5).

    python bench/search_1m/run.py --rate 300 --duration 60 [--workers 2 --threads 8] [--reuse]

Its own database (`<DATABASE_URL's db>_search1m`, bench/lifecycle_mix/stack.py), seeded by
bench/search_1m/seed.py (skipped with --reuse when the database already holds the numbers),
then only the web process (gunicorn, gunicorn.conf.py, WEB_WORKERS / WEB_THREADS). An open
loop offers `rate` requests per second, split evenly over:
  search.prefix   GET numbers/available/?prefix=+93790NNN       (a block of 1,000 numbers)
  search.pattern  GET numbers/available/?pattern=*NNN*           (a leading wildcard: the hardest)
  search.tier     GET numbers/available/?vanity_tier=GOLD|PLATINUM
  search.kind     GET numbers/available/?kind=MSISDN&prefix=+93790NNNN
  reserve.criteria POST reservations/ {"count": 1, "prefix": "+93790NNN"}
and prints per-operation P50/P95/P99, achieved RPS, and the web server's CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import requests  # noqa: E402

from bench.lifecycle_mix.mix import Report, Sample, process_cpu_seconds  # noqa: E402
from bench.lifecycle_mix.stack import GUNICORN, OUT, PY, Stack, free_port  # noqa: E402

OPS = ("search.prefix", "search.pattern", "search.tier", "search.kind", "reserve.criteria")


def seeded(stack: Stack, numbers: int) -> bool:
    try:
        with psycopg.connect(stack.env["DATABASE_OWNER_URL"]) as conn:
            row = conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'numbering_number'").fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0] >= numbers * 0.95) and (OUT / f"{stack.db_name}-dataset.json").exists()


def start_web(stack: Stack, workers: int, threads: int) -> None:
    stack.ports["web"] = free_port()
    env = dict(
        stack.env,
        WEB_BIND=f"127.0.0.1:{stack.ports['web']}",
        WEB_WORKERS=str(workers),
        WEB_THREADS=str(threads),
        WEB_METRICS_PORT=str(free_port()),
    )
    stack._start("web", [GUNICORN, "-c", "gunicorn.conf.py", "config.wsgi:application"], env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", stack.ports["web"]), timeout=1):
                time.sleep(2.0)  # the other workers finish starting
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not start")


class Load:
    def __init__(self, web: str, data: dict[str, Any], seed: int = 11) -> None:
        self.web, self.data, self.rng = web, data, random.Random(seed)
        self.pool = ThreadPoolExecutor(max_workers=64)
        self.sessions: dict[int, requests.Session] = {}

    def _session(self) -> requests.Session:
        import threading

        key = threading.get_ident()
        if key not in self.sessions:
            self.sessions[key] = requests.Session()
        return self.sessions[key]

    def _call(self, method: str, path: str, token: str, body: Any = None) -> str:
        headers = {"Authorization": f"Bearer {token}"}
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        try:
            r = self._session().request(method, self.web + path, json=body, headers=headers, timeout=10)
        except requests.RequestException:
            return "EXCEPTION"
        if r.status_code < 300:
            return "OK"
        try:
            return str(r.json().get("code") or r.status_code)
        except ValueError:
            return str(r.status_code)

    def request_for(self, op: str) -> tuple[str, str, Any]:
        rng = self.rng
        # A block of 1,000 numbers that exists: +9379 and the first 4 of the 7 seeded digits.
        block = "+9379" + f"{rng.randrange(self.data['numbers']):07d}"[:4]
        base = "/api/tenant/v1/numbers/available/?page_size=20&"
        if op == "search.prefix":
            return "GET", base + "prefix=" + requests.utils.quote(block), None
        if op == "search.pattern":
            return "GET", base + f"pattern=*{rng.randrange(1000):03d}*", None
        if op == "search.tier":
            return "GET", base + "vanity_tier=" + rng.choice(("GOLD", "PLATINUM")), None
        if op == "search.kind":
            return "GET", base + "kind=MSISDN&prefix=" + requests.utils.quote(block + "1"), None
        return "POST", "/api/tenant/v1/reservations/", {"count": 1, "ttl_seconds": 600, "prefix": block}

    async def run(self, rate: float, duration: float) -> Report:
        loop = asyncio.get_running_loop()
        report = Report(rate=rate, duration=duration)
        tasks: set[asyncio.Task[None]] = set()
        start, cpu0 = time.monotonic(), time.process_time()
        report.started = start

        async def one(op: str, due: float) -> None:
            method, path, body = self.request_for(op)
            token = self.rng.choice(self.data["tenants"])["token"]
            outcome = await loop.run_in_executor(self.pool, self._call, method, path, token, body)
            report.samples.append(Sample(op, outcome, due, time.monotonic() - due))

        for i in range(int(rate * duration)):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            report.offered += 1
            task = asyncio.create_task(one(OPS[i % len(OPS)], due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        report.wall_s = time.monotonic() - start
        report.generator_cpu_s = time.process_time() - cpu0
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", "8")))
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="keep a seeded database")
    parser.add_argument("--warmup", type=float, default=5)
    args = parser.parse_args()

    stack = Stack(db_suffix="search1m")
    dataset = OUT / f"{stack.db_name}-dataset.json"
    if not (args.reuse and seeded(stack, args.numbers)):
        stack.prepare()
        t0 = time.monotonic()
        subprocess.run(
            [
                PY,
                "bench/search_1m/seed.py",
                str(dataset),
                "--numbers",
                str(args.numbers),
                "--tenants",
                str(args.tenants),
            ],
            cwd=ROOT,
            env=stack.env,
            check=True,
        )
        print(f"[search1m] seeded in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    data = json.loads(dataset.read_text())
    start_web(stack, args.workers, args.threads)
    try:
        load = Load(f"http://127.0.0.1:{stack.ports['web']}", data)
        if args.warmup:
            asyncio.run(load.run(min(args.rate, 50), args.warmup))
        web = stack.pids("web")
        cpu0 = process_cpu_seconds(web)
        load1 = os.getloadavg()
        report = asyncio.run(load.run(args.rate, args.duration))
        server_cpu = process_cpu_seconds(stack.pids("web")) - cpu0
        summary = report.summary()
        summary.update(
            web_workers=args.workers,
            web_threads=args.threads,
            numbers=args.numbers,
            server_cpu_s=round(server_cpu, 2),
            server_cpu_per_request_ms=round(1000 * server_cpu / max(1, summary["completed"]), 2),
            loadavg_before=[round(x, 2) for x in load1],
            loadavg_after=[round(x, 2) for x in os.getloadavg()],
        )
        print(json.dumps(summary, indent=2))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
