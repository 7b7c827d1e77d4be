"""Unary vs batch vs stream vs stream-items ValidateLease, side by side in one run (`make bench-stream`,
issue 11 item 4, ADR 1110, ADR 1112: stream messages that carry --batch items each).

One `manage.py grpcserver` (plaintext, --workers 1 by default) with `run_cache_sync` beside
it, as in production, on the dataset of bench/validate_lease. For each mode the same
offered load (validations per second, open loop, one tick every 10 ms) runs for the same
duration from a Python grpc.aio client in this process, and the server's CPU (utime+stime
of the grpcserver process and its workers, from /proc) is read before and after. The figure
that matters is server CPU per validation; it does not depend on how busy the shared box is
(latency does, so it is printed but not the target). An idle interval of the same length is
measured too and reported (subtracted in the `net` column). Every answer is checked
against what the seed expects.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb  # noqa: E402
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_validate_lease", ROOT / "bench/validate_lease/run.py")
assert _spec and _spec.loader
vl: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vl)

RESULTS = ROOT / "bench" / "RESULTS.md"
TICK = 0.01
CLK_TCK = os.sysconf("SC_CLK_TCK")
Reason = pb.ValidateLeaseResponse.Reason


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / CLK_TCK


class Tally:
    def __init__(self) -> None:
        self.done = 0
        self.wrong = 0
        self.errors = 0
        self.codes: dict[str, int] = {}
        self.latencies: list[float] = []

    def answer(self, response: pb.ValidateLeaseResponse, expect: str, latency: float) -> None:
        self.done += 1
        self.wrong += Reason.Name(response.reason) != expect
        self.latencies.append(latency)

    def p(self, q: float) -> float:
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


async def unary(stub: Any, rows: list[dict[str, str]], rate: int, duration: float, tally: Tally) -> None:
    per_tick = max(1, round(rate * TICK))
    source = itertools.cycle(rows)
    pending: set[asyncio.Task[None]] = set()

    async def one(row: dict[str, str]) -> None:
        started = time.perf_counter()
        try:
            answer = await stub.ValidateLease(pb.ValidateLeaseRequest(number=row["number"], tenant_id=row["tenant_id"]))
        except grpc.RpcError as exc:
            tally.errors += 1
            tally.codes[exc.code().name] = tally.codes.get(exc.code().name, 0) + 1
            return
        tally.answer(answer, row["expect"], time.perf_counter() - started)

    def tick() -> None:
        for _ in range(per_tick):
            spawn(pending, one(next(source)))

    await ticks(duration, tick)
    await asyncio.gather(*pending)


async def batch(stub: Any, rows: list[dict[str, str]], rate: int, duration: float, tally: Tally, size: int) -> None:
    source = itertools.cycle(rows)
    pending: set[asyncio.Task[None]] = set()
    owed = 0.0

    async def one(items: list[dict[str, str]]) -> None:
        started = time.perf_counter()
        request = pb.ValidateLeasesRequest(
            items=[pb.ValidateLeaseRequest(number=r["number"], tenant_id=r["tenant_id"]) for r in items]
        )
        try:
            response = await stub.ValidateLeases(request)
        except grpc.RpcError:
            tally.errors += len(items)
            return
        latency = time.perf_counter() - started
        for row, result in zip(items, response.results, strict=True):
            tally.answer(result.response, row["expect"], latency)

    def tick() -> None:
        nonlocal owed
        owed += rate * TICK
        while owed >= size:
            owed -= size
            spawn(pending, one([next(source) for _ in range(size)]))

    await ticks(duration, tick)
    await asyncio.gather(*pending)


async def stream(
    stub: Any, rows: list[dict[str, str]], rate: int, duration: float, tally: Tally, size: int = 1
) -> None:
    """One validation per message, or (size > 1) messages that carry `size` items (ADR 1112)."""
    per_tick = max(1, round(rate * TICK))
    owed = 0.0
    source = itertools.cycle(rows)
    sent: dict[str, tuple[str, float]] = {}
    queue: asyncio.Queue[pb.ValidateLeaseStreamRequest | None] = asyncio.Queue()
    counter = itertools.count()

    async def requests() -> Any:
        while (request := await queue.get()) is not None:
            yield request

    call = stub.ValidateLeaseStream(requests())

    def request(row: dict[str, str]) -> pb.ValidateLeaseStreamRequest:
        cid = str(next(counter))
        sent[cid] = (row["expect"], time.perf_counter())
        return pb.ValidateLeaseStreamRequest(correlation_id=cid, number=row["number"], tenant_id=row["tenant_id"])

    def tick() -> None:
        nonlocal owed
        if size == 1:
            for _ in range(per_tick):
                queue.put_nowait(request(next(source)))
            return
        owed += rate * TICK
        while owed >= size:
            owed -= size
            items = [request(next(source)) for _ in range(size)]
            queue.put_nowait(pb.ValidateLeaseStreamRequest(correlation_id=f"m{next(counter)}", items=items))

    async def read() -> None:
        async for message in call:
            for response in message.answers or [message]:
                expect, started = sent.pop(response.correlation_id)
                if response.HasField("error"):
                    tally.errors += 1
                else:
                    tally.answer(response.response, expect, time.perf_counter() - started)

    reader = asyncio.create_task(read())
    await ticks(duration, tick)
    queue.put_nowait(None)
    await reader


def spawn(pending: set[asyncio.Task[None]], coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    pending.add(task)
    task.add_done_callback(pending.discard)


async def ticks(duration: float, tick: Any) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while (now := loop.time()) - start < duration:
        tick()
        n += 1
        await asyncio.sleep(max(0.0, start + n * TICK - now))


async def measure(port: int, pids: list[int], rows: list[dict[str, str]], args: argparse.Namespace) -> list[Any]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.NumberingServiceStub(channel)
    modes = {
        "idle": None,
        "unary": lambda t: unary(stub, rows, args.rate, args.duration, t),
        f"batch({args.batch})": lambda t: batch(stub, rows, args.rate, args.duration, t, args.batch),
        "stream": lambda t: stream(stub, rows, args.rate, args.duration, t),
        f"stream-items({args.batch})": lambda t: stream(stub, rows, args.rate, args.duration, t, args.batch),
    }
    # Warm the caches first, so each mode meets the same warm worker.
    await unary(stub, rows, min(args.rate, 2000), 2.0, Tally())
    out = []
    for name, run in modes.items():
        tally = Tally()
        before, wall = cpu_seconds(pids), time.perf_counter()
        if run is None:
            await asyncio.sleep(args.duration)
        else:
            await run(tally)
        cpu, wall = cpu_seconds(pids) - before, time.perf_counter() - wall
        out.append((name, tally, cpu, wall))
        print(
            f"[bench-stream] {name:11} validations {tally.done:7}  wrong {tally.wrong}  errors {tally.errors}  "
            f"{tally.codes or ''} server cpu {cpu:6.2f} s over {wall:5.1f} s"
            f"  p50 {tally.p(0.5):7.2f} ms  p99 {tally.p(0.99):7.2f} ms",
            flush=True,
        )
    await channel.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1500, help="offered validations per second, every mode")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    env = vl.bench_env()
    tenant = urlparse(os.environ.get("DATABASE_TENANT_URL") or "postgres://numbering_tenant@127.0.0.1:5432/x")
    # vl.bench_env blanks the tenant URL, which bootstrap_db no longer accepts: the bench database's.
    env["DATABASE_TENANT_URL"] = urlunparse(tenant._replace(path=urlparse(env["DATABASE_URL"]).path))
    rows = vl.prepare_dataset(env)
    print(f"[bench-stream] dataset: {len(rows)} requests", flush=True)
    sync = vl.start_cache_sync(env)
    server = vl.Server(env, args.workers, False)
    try:
        pids = [server.process.pid, *server.worker_pids()]
        load = os.getloadavg()
        results = asyncio.run(measure(server.port, sorted(set(pids)), rows, args))
    finally:
        server.stop()
        sync.terminate()
        sync.wait(30)
    report(args, results, load)
    return 0


def report(args: argparse.Namespace, results: list[Any], load: tuple[float, float, float]) -> None:
    idle_cpu_per_s = results[0][2] / results[0][3]
    lines = [
        "",
        f"## ValidateLease unary vs batch vs stream (issue 11 item 4, ADR 1110, 1112) — "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`python bench/validate_stream/run.py --rate {args.rate} --duration {args.duration:g} --batch {args.batch} "
        f"--workers {args.workers}` (`make bench-stream`). {platform.node()}, {os.cpu_count()} cores, "
        f"load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (shared box: latency is not "
        f"comparable across runs; CPU per validation is). Plaintext, run_cache_sync beside the server. "
        f"{args.note}",
        "",
        "| mode | validations | wrong | errors | server CPU s | µs CPU / validation | net of idle | "
        "validations per server-core-second (net) | × unary | P50 ms | P99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    unary_rate = None
    for name, tally, cpu, wall in results:
        if name == "idle":
            lines.append(f"| idle | 0 | | | {cpu:.2f} | | | | | | |")
            continue
        net = max(cpu - idle_cpu_per_s * wall, 1e-9)
        per_core = tally.done / net
        unary_rate = unary_rate or per_core
        lines.append(
            f"| {name} | {tally.done} | {tally.wrong} | {tally.errors} | {cpu:.2f} | "
            f"{cpu / max(tally.done, 1) * 1e6:.1f} | {net / max(tally.done, 1) * 1e6:.1f} | {per_core:,.0f} | "
            f"{per_core / unary_rate:.1f}× | {tally.p(0.5):.2f} | {tally.p(0.99):.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    with RESULTS.open("a") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
