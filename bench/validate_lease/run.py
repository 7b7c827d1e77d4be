"""ValidateLease benchmark (`make bench`): h2load against the real gRPC server and against an
empty-handler baseline built the same way (same command, workers, interceptor, plaintext
h2c), at fixed request rates for a fixed duration.

h2load posts one body per process, so the load is split over BODIES h2load processes,
each with its own (number, tenant) request: mostly valid leases of distinct tenants, plus
WRONG_TENANT, NOT_ASSIGNED and UNKNOWN_NUMBER requests. Before measuring, every number of
the dataset (many numbers, many tenants) is validated once through a gRPC client and the
answers are checked against what the seed expects. h2load only sees HTTP status and not
gRPC trailers, so correctness is checked by that pass, not during the load.

Results are printed and appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import redis  # noqa: E402

from bench.ports import free_port  # noqa: E402
from core.redis_client import lease_invalidation_channel  # noqa: E402
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb  # noqa: E402
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
PY_SPY = shutil.which("py-spy") or (
    str(ROOT / ".venv" / "bin" / "py-spy") if (ROOT / ".venv/bin/py-spy").exists() else None
)
RESULTS = ROOT / "bench" / "RESULTS.md"
OUT = ROOT / "bench" / "out"
BODIES = 10  # h2load processes: 7 valid, 1 WRONG_TENANT, 1 NOT_ASSIGNED, 1 UNKNOWN_NUMBER
CLIENTS_PER_BODY = 2


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    app = urlparse(env.get("DATABASE_URL", "postgres://numbering_app@127.0.0.1:5432/numbering"))
    owner = urlparse(env.get("DATABASE_OWNER_URL", "postgres://numbering_owner@127.0.0.1:5432/numbering"))
    name = app.path.lstrip("/") + "_bench"
    env["DATABASE_URL"] = urlunparse(app._replace(path="/" + name))
    env["DATABASE_OWNER_URL"] = urlunparse(owner._replace(path="/" + name))
    # The tenant role on the bench database too (bootstrap_db creates the role from this URL).
    tenant = urlparse(env.get("DATABASE_TENANT_URL") or "postgres://numbering_tenant@127.0.0.1:5432/numbering")
    env["DATABASE_TENANT_URL"] = urlunparse(tenant._replace(path="/" + name))
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        NUMBERING_ENV="dev",
        LOG_LEVEL="WARNING",
        GRPC_INSECURE="1",
        DJANGO_DEBUG="0",  # as every pod runs (deploy/k8s/configmap.yaml)
    )
    for var in ("GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE", "GRPC_TLS_CLIENT_CA_FILE"):
        env.pop(var, None)
    return env


def ensure_h2load() -> None:
    subprocess.run(["bash", str(Path(__file__).with_name("ensure_h2load.sh"))], check=True)


def prepare_dataset(env: dict[str, str]) -> list[dict[str, str]]:
    subprocess.run([PY, "deploy/local/bootstrap_db.py"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [PY, "manage.py", "migrate", "--database", "owner", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    out = subprocess.run(
        [PY, str(Path(__file__).with_name("seed.py"))], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def start_cache_sync(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`run_cache_sync` beside the server, as in every deployment: a worker trusts its cached
    leases only within LEASE_CACHE_TRUST_MS of the cache-sync's heartbeat (ADR 1200), so
    without it every ValidateLease is answered from PostgreSQL (about a tenth of the rate)."""
    client = redis.Redis.from_url(env.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    heartbeats = client.pubsub(ignore_subscribe_messages=True)
    heartbeats.subscribe(lease_invalidation_channel(client))
    sync = subprocess.Popen(  # noqa: S603
        [PY, "manage.py", "run_cache_sync"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # Its first pass resyncs this Redis, then heartbeats: from then on the workers trust it.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sync.poll() is not None:
                raise RuntimeError(f"run_cache_sync exited with {sync.returncode}")
            message = heartbeats.get_message(timeout=0.5)
            if message is not None and b"|h|" in message["data"]:
                return sync
        sync.terminate()
        raise RuntimeError("run_cache_sync sent no heartbeat within 60 s")
    finally:
        heartbeats.close()
        client.close()


class Server:
    def __init__(self, env: dict[str, str], workers: int, empty: bool) -> None:
        self.port = free_port()
        cmd = [
            PY,
            "manage.py",
            "grpcserver",
            "--workers",
            str(workers),
            "--port",
            str(self.port),
            "--metrics-port",
            "0",
        ]
        if empty:
            cmd.append("--empty")
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)  # noqa: S603
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                try:
                    pb_grpc.NumberingServiceStub(channel).ValidateLease(
                        pb.ValidateLeaseRequest(
                            number="+93799999999", tenant_id="00000000-0000-0000-0000-000000000000"
                        ),
                        timeout=1,
                    )
                    time.sleep(1.0)  # the other workers finish starting
                    return
                except grpc.RpcError:
                    time.sleep(0.2)
        raise RuntimeError("server did not start")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()] or [self.process.pid]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def check_and_warm(port: int, rows: list[dict[str, str]]) -> dict[str, int]:
    """Validate every dataset row once (warms every worker: one channel per connection)."""
    channels = [
        grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(8)
    ]
    stubs = [pb_grpc.NumberingServiceStub(c) for c in channels]
    wrong = {"checked": 0, "mismatched": 0}

    def one(i: int) -> bool:
        row = rows[i]
        answer = stubs[i % len(stubs)].ValidateLease(
            pb.ValidateLeaseRequest(number=row["number"], tenant_id=row["tenant_id"])
        )
        return pb.ValidateLeaseResponse.Reason.Name(answer.reason) == row["expect"]

    with ThreadPoolExecutor(16) as pool:
        for ok in pool.map(one, range(len(rows))):
            wrong["checked"] += 1
            wrong["mismatched"] += 0 if ok else 1
    for c in channels:
        c.close()
    return wrong


def bodies(rows: list[dict[str, str]], directory: Path) -> list[Path]:
    by_kind: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_kind.setdefault(row["expect"], []).append(row)
    ok = by_kind["OK"]
    picks = [ok[i * len(ok) // 7] for i in range(7)] + [
        by_kind["WRONG_TENANT"][0],
        by_kind["NOT_ASSIGNED"][0],
        by_kind["UNKNOWN_NUMBER"][0],
    ]
    paths = []
    for i, row in enumerate(picks):
        message = pb.ValidateLeaseRequest(number=row["number"], tenant_id=row["tenant_id"]).SerializeToString()
        path = directory / f"body{i}.bin"
        path.write_bytes(struct.pack(">BI", 0, len(message)) + message)  # gRPC length-prefixed frame
        paths.append(path)
    return paths


def run_load(
    port: int, rate: int, duration: int, body_files: list[Path], directory: Path, tag: str
) -> dict[str, float]:
    per_client = rate // (len(body_files) * CLIENTS_PER_BODY)
    procs, logs = [], []
    for i, body in enumerate(body_files):
        log = directory / f"{tag}-{rate}-{i}.log"
        logs.append(log)
        procs.append(
            subprocess.Popen(  # noqa: S603
                [
                    "h2load",
                    "-t",
                    "1",
                    "-c",
                    str(CLIENTS_PER_BODY),
                    "-m",
                    "32",
                    "--rps",
                    str(per_client),
                    "-D",
                    str(duration),
                    "--warm-up-time",
                    "2",
                    "-d",
                    str(body),
                    "-H",
                    "content-type: application/grpc",
                    "-H",
                    "te: trailers",
                    "--log-file",
                    str(log),
                    f"http://127.0.0.1:{port}/numbering.v1.NumberingService/ValidateLease",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [p.communicate()[0] for p in procs]
    latencies, errors, starts, ends = [], 0, [], []
    for log in logs:
        for line in log.read_text().splitlines():
            start_us, status, elapsed_us = (int(x) for x in line.split("\t")[:3])
            if status != 200:
                errors += 1
                continue
            latencies.append(elapsed_us / 1000)
            starts.append(start_us)
            ends.append(start_us + elapsed_us)
    for out in outputs:
        for line in out.splitlines():
            if line.startswith("requests:") and "errored" in line:
                parts = dict(
                    (v, int(k)) for k, v in (p.strip().split(" ", 1) for p in line.split(":", 1)[1].split(","))
                )
                errors += parts.get("failed", 0) + parts.get("errored", 0) - 0
    span = (max(ends) - min(starts)) / 1e6 if latencies else 1
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 100 else [0.0] * 99
    return {
        "offered": per_client * len(body_files) * CLIENTS_PER_BODY,
        "achieved": len(latencies) / span,
        "p50": q[49],
        "p95": q[94],
        "p99": q[98],
        "errors": errors,
        "requests": len(latencies),
    }


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"nproc={os.cpu_count()}, CPU: {model or platform.processor()}, {platform.system()} {platform.release()}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="5000,7500")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--note", default="")
    parser.add_argument("--profile", action="store_true", help="py-spy record one worker during the first rate")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    ensure_h2load()
    env = bench_env()
    print("[bench] preparing dataset in", urlparse(env["DATABASE_URL"]).path.lstrip("/"), flush=True)
    rows = prepare_dataset(env)
    print(
        f"[bench] dataset: {len(rows)} requests over {len({r['number'] for r in rows})} numbers, "
        f"{len({r['tenant_id'] for r in rows})} tenants",
        flush=True,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[int, dict[str, float]]] = {}
    check: dict[str, int] = {}
    sync = start_cache_sync(env)
    with tempfile.TemporaryDirectory(prefix="bench-vl-") as tmp, contextlib.ExitStack() as stack:
        stack.callback(sync.wait, 30)
        stack.callback(sync.terminate)
        directory = Path(tmp)
        body_files = bodies(rows, directory)
        for tag, empty in (("baseline", True), ("validate_lease", False)):
            server = Server(env, args.workers, empty)
            try:
                if not empty:
                    check = check_and_warm(server.port, rows)
                    print(f"[bench] correctness pass: {check}", flush=True)
                results[tag] = {}
                for rate in rates:
                    spy = None
                    if args.profile and not empty and rate == rates[0] and PY_SPY:
                        spy = subprocess.Popen(  # noqa: S603
                            [
                                PY_SPY,
                                "record",
                                "-p",
                                str(server.worker_pids()[0]),
                                "-d",
                                str(args.duration),
                                "-r",
                                "200",
                                "-f",
                                "raw",
                                "-o",
                                str(OUT / "validate_lease.profile.txt"),
                                "--nonblocking",
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    results[tag][rate] = run_load(server.port, rate, args.duration, body_files, directory, tag)
                    if spy:
                        spy.wait(30)
                    r = results[tag][rate]
                    print(
                        f"[bench] {tag:15} offered {r['offered']:5} rps: achieved {r['achieved']:7.0f} rps  "
                        f"p50 {r['p50']:6.2f} ms  p95 {r['p95']:6.2f} ms  p99 {r['p99']:6.2f} ms  "
                        f"errors {r['errors']}",
                        flush=True,
                    )
            finally:
                code = server.stop()
                print(f"[bench] {tag} server exited {code}", flush=True)
    report(args, rates, results, check, len(rows), profile_summary() if args.profile else [])
    return 0


HANDLER_FRAMES = ("grpc_server/interceptors.py", "grpc_server/servicer.py", "numbering/lease_lookup.py")


def profile_summary() -> list[str]:
    """Where one worker's CPU samples went (py-spy, self time of the innermost frame)."""
    path = OUT / "validate_lease.profile.txt"
    if not path.exists():
        return ["- profile: py-spy not available"]
    self_time: dict[str, int] = {}
    total = ours = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        frame = stack.split(";")[-1]
        self_time[frame] = self_time.get(frame, 0) + int(count)
        if any(k in stack for k in HANDLER_FRAMES):
            ours += int(count)
    top = sorted(self_time.items(), key=lambda kv: -kv[1])[:8]
    lines = [
        f"- profile (py-spy, one worker, first rate, {total} samples; self time by innermost Python frame;"
        " native grpc/Cython work shows as its calling frame):"
    ]
    lines += [f"  - {n / total * 100:4.1f}% {f}" for f, n in top]
    lines.append(f"  - {ours / total * 100:4.1f}% of samples inside our per-call code (guard, servicer, lease lookup)")
    return lines


def report(
    args: argparse.Namespace,
    rates: list[int],
    results: dict,
    check: dict[str, int],
    n_rows: int,
    profile: list[str] | None = None,
) -> None:
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — ValidateLease, "
        f"{args.workers} workers, {args.duration} s per rate\n",
        f"- machine: {machine()}; load average at start: {os.getloadavg()[0]:.2f}",
        "- h2load (10 processes) runs on the same 2 cores as the server; state other load with --note.",
        "- run_cache_sync runs beside the server (its heartbeat is what lets the workers trust their caches).",
        f"- command: `make bench` → `{' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`",
        f"- dataset: {n_rows} (number, tenant) requests checked before the load; mismatches: "
        f"{check.get('mismatched', '?')} of {check.get('checked', '?')}",
        "- load mix: 10 h2load processes × 2 connections, one request body each: 7 valid leases (distinct "
        "tenants), 1 WRONG_TENANT, 1 NOT_ASSIGNED, 1 UNKNOWN_NUMBER",
    ]
    if args.note:
        lines.append(f"- note: {args.note}")
    lines += profile or []
    lines += [
        "",
        "| server | offered RPS | achieved RPS | P50 ms | P95 ms | P99 ms | errors "
        "| RPS vs baseline | P95 vs baseline |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for tag in ("baseline", "validate_lease"):
        for rate in rates:
            r = results[tag][rate]
            b = results["baseline"][rate]
            lines.append(
                f"| {tag} | {r['offered']} | {r['achieved']:.0f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | "
                f"{r['errors']} | {r['achieved'] / b['achieved']:.2f} | {r['p95'] / b['p95'] if b['p95'] else 0:.2f} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nAppended by `make bench` (bench/validate_lease/run.py).\n")
    with RESULTS.open("a") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
