"""Write-path cost (issue 11 item 2, ADR 1100): CPU and SQL statements per lifecycle transition.

Usage (a database of its own, `<DATABASE_URL's name>_wbench`, created and migrated here):

    DATABASE_URL=... DATABASE_OWNER_URL=... REDIS_URL=... \\
        .venv/bin/python bench/write_path/run.py --cycles 300 --grpc-seconds 20 --clients 8

Two measurements of Reserve → Assign → Release cycles on distinct numbers, each with an
idempotency key, as a tenant-bound service (the portal's shape):

(a) in-process, one thread, through the service functions: process CPU time
    (time.process_time) per transition and SQL statements per transition (a connection
    execute_wrapper counts every statement the ORM or a cursor sends);
(b) through a live `manage.py grpcserver` (plaintext, one worker process) with K concurrent
    client threads: transitions/s and the server process's CPU seconds per transition
    (/proc/<pid>/stat utime+stime of the server and its children, before/after), plus the
    PostgreSQL backends' CPU (/proc of the backends pg_stat_activity lists for the bench
    database).

CPU per transition is robust on a shared machine; the load average is printed alongside.
DJANGO_DEBUG is off as in production (BENCH_DJANGO_DEBUG=1 to measure with it on), and
parameters are bound server-side as in the mutation pool (DATABASE_SERVER_SIDE_BINDING=0 to
measure without). Outside
the action's transaction the gRPC path also pays Django's connection health check (one
`SELECT 1` per unit of work, CONN_HEALTH_CHECKS); the in-process run does not.
Appends a section to bench/RESULTS.md with --record LABEL.

`--layers ROUNDS` instead measures, in process, what the gRPC worker wraps around an action
(see `layers`): `run.py --layers 8 --cycles 40`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
sys.path.insert(0, str(ROOT))
from bench.ports import free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    app = urlparse(env.get("DATABASE_URL", "postgres://numbering_app@127.0.0.1:5432/numbering"))
    owner = urlparse(env.get("DATABASE_OWNER_URL", "postgres://numbering_owner@127.0.0.1:5432/numbering"))
    name = app.path.lstrip("/") + "_wbench"
    env["DATABASE_URL"] = urlunparse(app._replace(path="/" + name))
    env["DATABASE_OWNER_URL"] = urlunparse(owner._replace(path="/" + name))
    env.pop("DATABASE_TENANT_URL", None)
    env.pop("DATABASE_REPLICA_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        NUMBERING_ENV="dev",
        LOG_LEVEL="WARNING",
        GRPC_INSECURE="1",
        # As in production: with DEBUG on, Django records every statement (CursorDebugWrapper).
        DJANGO_DEBUG=os.environ.get("BENCH_DJANGO_DEBUG", "0"),
        # As the mutation pool runs (GRPC_POOL=mutations turns it on, ADR 1100 amendment of
        # 2026-12-03); DATABASE_SERVER_SIDE_BINDING=0 measures client-side binding.
        DATABASE_SERVER_SIDE_BINDING=os.environ.get("DATABASE_SERVER_SIDE_BINDING", "1"),
    )
    for var in ("GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE", "GRPC_TLS_CLIENT_CA_FILE"):
        env.pop(var, None)
    return env


ENV = bench_env()
if "--child" not in sys.argv:
    subprocess.run([PY, "deploy/local/bootstrap_db.py"], cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [PY, "manage.py", "migrate", "--database", "owner", "--no-input", "-v", "0"], cwd=ROOT, env=ENV, check=True
    )
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from contracts.models import Issuer  # noqa: E402
from core.actors import Actor  # noqa: E402
from core.rls import rls_scope  # noqa: E402
from numbering import services  # noqa: E402
from numbering.models import Number  # noqa: E402
from pools.models import InventoryPool, Tenant, TenantPool  # noqa: E402


def seed(count: int) -> tuple[str, list[str]]:
    """A tenant entitled to a pool of `count` fresh AVAILABLE numbers."""
    run = uuid.uuid4().hex[:8]
    with transaction.atomic(), rls_scope(platform=True):
        issuer, _ = Issuer.objects.get_or_create(
            code="WBENCH", defaults={"name": "Write bench", "kind": Issuer.Kind.MNO, "msisdn_prefixes": ["77"]}
        )
        pool, _ = InventoryPool.objects.get_or_create(
            code="WBENCH", defaults={"name": "Write bench", "kind": InventoryPool.Kind.MSISDN}
        )
        tenant = Tenant.objects.create(name=f"WBench {run}", registration_no=f"WBENCH-{run}", segment="SMB")
        tenant_pool = TenantPool.objects.create(tenant=tenant, quota_msisdn=1_000_000)
        tenant_pool.inventory_pools.add(pool)
        base = int(uuid.uuid4().int % 9_000_000)
        wanted = [f"+9377{(base + i) % 10_000_000:07d}" for i in range(count * 2)]
        taken = set(Number.objects.filter(number__in=wanted).values_list("number", flat=True))
        numbers = [n for n in wanted if n not in taken][:count]
        Number.objects.bulk_create(
            [Number(number=n, kind="MSISDN", issuer=issuer, pool=pool, state="AVAILABLE") for n in numbers]
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return str(tenant.id), numbers


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# --- (a) in-process ------------------------------------------------------------------------


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0
        self.sql: Counter[str] = Counter()

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.count += 1
        self.sql[" ".join(str(sql).split())[:110]] += 1
        return execute(sql, params, many, context)


ACTIONS = {"reserve": services.number_reserve, "assign": services.number_assign, "release": services.number_release}


def calls(number: str, tenant: str, actor: Actor) -> list[tuple[Any, dict[str, Any]]]:
    """One Reserve → Assign → Release cycle on `number`: each action with its arguments, an
    idempotency key each."""
    key = uuid.uuid4().hex
    kwargs = {"number": number, "tenant_id": tenant, "actor": actor}
    return [(fn, {**kwargs, "idempotency_key": f"{name}-{key}"}) for name, fn in ACTIONS.items()]


def cycle(number: str, tenant: str, actor: Actor) -> None:
    for fn, kwargs in calls(number, tenant, actor):
        fn(**kwargs)


def in_process(cycles: int, show_sql: bool) -> dict[str, float]:
    tenant, numbers = seed(cycles + 20)
    actor = Actor.service("bench-portal", tenant_id=uuid.UUID(tenant))
    for number in numbers[:20]:  # warm-up: imports, caches, first connection
        cycle(number, tenant, actor)
    per_action: dict[str, int] = {}
    counter = StatementCounter()
    with connection.execute_wrapper(counter):
        for name, (fn, kwargs) in zip(ACTIONS, calls(numbers[20], tenant, actor), strict=True):
            before = counter.count
            fn(**kwargs)
            per_action[name] = counter.count - before
    if show_sql:
        for sql, n in counter.sql.most_common():
            print(f"  {n:3d}  {sql}")
    counter = StatementCounter()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(counter):
        for number in numbers[21 : 21 + cycles]:
            cycle(number, tenant, actor)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    transitions = 3 * len(numbers[21 : 21 + cycles])
    return {
        "transitions": transitions,
        "cpu_ms_per_transition": 1000 * cpu / transitions,
        "wall_ms_per_transition": 1000 * wall / transitions,
        "statements_per_transition": counter.count / transitions,
        **{f"statements_{k}": v for k, v in per_action.items()},
    }


def layers(rounds: int, cycles: int) -> dict[str, list[float]]:
    """CPU per transition of the same cycle wrapped in what the gRPC worker adds, layer by
    layer, alternated round by round so the box's drift falls on every mode alike:
    `direct` calls the services; `unit_of_work` runs each action as the worker's database
    thread does (grpc_server.servicer._unit_of_work: role check, close_old_connections
    before and after, hence the health check's SELECT 1); `executor_hop` also sends it from
    an event loop to a DatabaseThreads pool and waits as the servicer does (one at a time).
    What the gRPC run costs beyond `executor_hop` is grpc.aio, the guard and protobuf."""
    import asyncio

    from core.db_wait import DatabaseThreads
    from grpc_server.servicer import _unit_of_work

    tenant, numbers = seed(rounds * cycles * 3 + 60)
    actor = Actor.service("bench-portal", tenant_id=uuid.UUID(tenant))
    pending = iter(numbers)
    threads = DatabaseThreads(8)
    loop = asyncio.new_event_loop()

    async def hop(number: str) -> None:
        for fn, kwargs in calls(number, tenant, actor):
            await threads.run(30, _unit_of_work, fn, kwargs)

    modes: dict[str, Any] = {
        "direct": lambda n: cycle(n, tenant, actor),
        "unit_of_work": lambda n: [_unit_of_work(fn, kwargs) for fn, kwargs in calls(n, tenant, actor)],
        "executor_hop": lambda n: loop.run_until_complete(hop(n)),
    }
    try:
        for mode in modes.values():  # warm-up: imports, caches, every pool thread's connection
            for _ in range(20):
                mode(next(pending))
        results: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(rounds):
            for name, mode in modes.items():
                cpu0 = time.process_time()
                for _ in range(cycles):
                    mode(next(pending))
                results[name].append(1000 * (time.process_time() - cpu0) / (3 * cycles))
        return results
    finally:
        threads.shutdown()
        loop.close()


# --- (b) through the live gRPC server ------------------------------------------------------


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def tree(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    children = [int(p) for p in out.split()]
    return [pid] + [q for c in children for q in tree(c)]


def backend_pids() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [int(r[0]) for r in cursor.fetchall()]


def through_grpc(seconds: float, clients: int, workers: int, db_threads: int) -> dict[str, float]:
    import grpc

    from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
    from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc

    tenant, numbers = seed(int(clients * seconds * 60) + 200)
    port = free_port()
    env = dict(ENV, GRPC_DB_THREADS=str(db_threads))
    server = subprocess.Popen(  # noqa: S603
        [PY, "manage.py", "grpcserver", "--workers", str(workers), "--port", str(port), "--metrics-port", "0"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.NumberingServiceStub(channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                stub.Lookup(pb.LookupRequest(number=numbers[0]), timeout=2)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        lock = threading.Lock()
        pending = iter(numbers)
        errors: Counter[str] = Counter()
        done = [0]

        def one_cycle() -> bool:
            with lock:
                number = next(pending, None)
            if number is None:
                return False
            key = uuid.uuid4().hex
            try:
                stub.Reserve(pb.ReserveRequest(number=number, tenant_id=tenant, idempotency_key=f"r{key}"), timeout=30)
                stub.Assign(pb.AssignRequest(number=number, tenant_id=tenant, idempotency_key=f"a{key}"), timeout=30)
                stub.Release(pb.ReleaseRequest(number=number, tenant_id=tenant, idempotency_key=f"l{key}"), timeout=30)
            except grpc.RpcError as exc:
                errors[str(exc.code())] += 1
                return True
            with lock:
                done[0] += 3
            return True

        for _ in range(clients * 3):  # warm every DB thread's connection
            one_cycle()
        done[0] = 0
        server_pids = tree(server.pid)
        pg_pids = backend_pids()
        cpu0 = sum(proc_cpu(p) for p in server_pids)
        pg0 = sum(proc_cpu(p) for p in pg_pids)
        stop_at = time.monotonic() + seconds
        start = time.monotonic()

        def client() -> None:
            while time.monotonic() < stop_at and one_cycle():
                pass

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - start
        cpu = sum(proc_cpu(p) for p in server_pids) - cpu0
        pg = sum(proc_cpu(p) for p in pg_pids) - pg0
        transitions = done[0]
        channel.close()
        return {
            "transitions": transitions,
            "transitions_per_s": transitions / wall,
            "server_cpu_ms_per_transition": 1000 * cpu / max(transitions, 1),
            "server_cores_busy": cpu / wall,
            "pg_cpu_ms_per_transition": 1000 * pg / max(transitions, 1),
            "errors": sum(errors.values()),
            "error_codes": dict(errors),  # type: ignore[dict-item]
        }
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--cycles", type=int, default=300, help="in-process Reserve→Assign→Release cycles (per round with --layers)"
    )
    parser.add_argument("--grpc-seconds", type=float, default=20, help="0 skips the gRPC run")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--db-threads", type=int, default=8)
    parser.add_argument("--show-sql", action="store_true", help="print the statements of one cycle")
    parser.add_argument("--record", metavar="LABEL", help="append the results to bench/RESULTS.md under LABEL")
    parser.add_argument(
        "--layers",
        type=int,
        metavar="ROUNDS",
        help="only the in-process layer comparison (direct / unit of work / executor hop), ROUNDS alternations",
    )
    args = parser.parse_args()
    if args.layers:
        per_mode = layers(args.layers, args.cycles)
        for name, values in per_mode.items():
            rounds = " ".join(f"{v:.2f}" for v in values)
            print(f"{name:13s} median {statistics.median(values):.2f} ms CPU / transition: {rounds}")
        print(f"load average {load()}")
        return

    load_before = load()
    a = in_process(args.cycles, args.show_sql)
    print("in-process:", json.dumps(a, indent=1))
    b = through_grpc(args.grpc_seconds, args.clients, args.workers, args.db_threads) if args.grpc_seconds else {}
    if b:
        print("gRPC:", json.dumps(b, indent=1))
    load_after = load()
    print(f"load average before {load_before}, after {load_after}")
    if args.record:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        lines = [
            f"\n### Write path — {args.record} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},"
            f" commit {commit.stdout.strip()})\n",
            f"Machine: {platform.node()}, {os.cpu_count()} CPUs, load average before {load_before} / after"
            f" {load_after}. Command: `{' '.join(['bench/write_path/run.py', *sys.argv[1:]])}`\n",
            f"- in-process (1 thread, {a['transitions']} transitions): **{a['cpu_ms_per_transition']:.2f} ms CPU**"
            f" / transition, {a['wall_ms_per_transition']:.2f} ms wall, **{a['statements_per_transition']:.1f}"
            f" statements** / transition (reserve {a['statements_reserve']}, assign {a['statements_assign']},"
            f" release {a['statements_release']})",
        ]
        if b:
            lines.append(
                f"- gRPC ({args.clients} clients, {args.workers} worker, {args.db_threads} DB threads,"
                f" {args.grpc_seconds:.0f} s): **{b['transitions_per_s']:.0f} transitions/s**,"
                f" server **{b['server_cpu_ms_per_transition']:.2f} ms CPU** / transition"
                f" ({b['server_cores_busy']:.2f} cores busy), PostgreSQL {b['pg_cpu_ms_per_transition']:.2f} ms"
                f" CPU / transition, errors {b['errors']} {b['error_codes'] or ''}"
            )
        with (ROOT / "bench" / "RESULTS.md").open("a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
