"""`make bench-mix`: the readiness mix against the real service (issue 11 item 3).

Starts the service on its own database (`<DATABASE_URL db>_mix`, recreated each run): gRPC
over mTLS (one pool, or with --split a hot-path pool and a mutation pool), gunicorn,
cache-sync and the outbox relay; seeds tenants, leases and free numbers; warms up; runs the
open-loop mix at --rate for --duration; reports per-operation latency, refusals by code, the
false-CONFLICT rate, errors, and the CPU of the generator and of each server process per
request. Compare two shapes in one run with --compare (same dataset, same rate).

    python bench/lifecycle_mix/run.py --rate 600 --duration 60 [--split] [--compare] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.lifecycle_mix.connections import ConnectionSampler  # noqa: E402
from bench.lifecycle_mix.mix import Dataset, Report, Shares, run_mix  # noqa: E402
from bench.lifecycle_mix.stack import OUT, Stack  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"nproc={os.cpu_count()}, {model or platform.processor()}, load avg {load} at the start"


def measure(stack: Stack, data: Dataset, args: argparse.Namespace, label: str) -> dict[str, object]:
    shares = Shares(validate=1 - args.write_share - args.rest_share, grpc_write=args.write_share, rest=args.rest_share)
    # Warm every worker with validations only: a write here would take numbers the measured run owns.
    run_mix(stack.target(), data, rate=min(args.rate, 200), duration=3, shares=Shares(1.0, 0.0, 0.0), seed=7)
    names = list(stack.procs)
    before = {n: stack.cpu_seconds(n) for n in names}
    sampler = ConnectionSampler(stack.db_name)
    sampler.start()
    report: Report = run_mix(stack.target(), data, rate=args.rate, duration=args.duration, shares=shares, seed=11)
    connections = sampler.stop()
    after = {n: stack.cpu_seconds(n) for n in names}
    summary = report.summary()
    done = max(1, summary["completed"])  # type: ignore[call-overload]
    cpu = {n: round(after[n] - before[n], 2) for n in names}
    summary["server_cpu_s"] = cpu
    summary["server_cpu_per_request_ms"] = round(1000 * sum(cpu.values()) / done, 3)
    summary["label"] = label
    summary["db_connections"] = connections
    return summary


def table(summary: dict[str, Any]) -> list[str]:
    lines = [
        f"**{summary['label']}** — offered {summary['offered']} at {summary['rate']}/s for {summary['duration_s']} s, "
        f"completed {summary['completed']} ({summary['achieved_rps']}/s), shed {summary['shed']}, "
        f"errors {summary['errors']}, wrong answers {summary['wrong_answers']}, "
        f"false-CONFLICT {summary['false_conflicts']}/{summary['reserve_attempts']} "
        f"({100 * float(summary['false_conflict_rate']):.2f} %), "
        f"retries with the same key {summary['retries_same_key']}",
        "",
        "| operation | n | P50 ms | P95 ms | P99 ms | outcomes |",
        "|---|---|---|---|---|---|",
    ]
    for op, row in summary["ops"].items():  # type: ignore[attr-defined]
        outcomes = ", ".join(f"{k} {v}" for k, v in row["outcomes"].items())
        lines.append(f"| {op} | {row['n']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {outcomes} |")
    lines += [
        "",
        f"CPU: generator {summary['generator_cpu_s']} s ({summary['generator_cpu_per_request_ms']} ms/request); "
        f"server {summary['server_cpu_s']} = {summary['server_cpu_per_request_ms']} ms/request",
        "",
    ]
    conns = summary.get("db_connections") or {}
    if conns:
        lines += [
            "PostgreSQL connections per process (pg_stat_activity every 100 ms; busy = in a statement or a"
            " transaction):",
            "",
            "| process | open (max) | busy mean | busy P99 | busy max |",
            "|---|---|---|---|---|",
        ]
        for name, row in conns.items():  # type: ignore[attr-defined]
            lines.append(f"| {name} | {row['open_max']} | {row['busy_mean']} | {row['busy_p99']} | {row['busy_max']} |")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=600)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--write-share", type=float, default=0.07, help="gRPC Reserve/Extend/Assign/Release")
    parser.add_argument("--rest-share", type=float, default=0.03, help="REST search/reserve/release")
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--leases", type=int, default=100)
    parser.add_argument("--free", type=int, default=0, help="free numbers per tenant (default: enough for the run)")
    parser.add_argument("--grpc-workers", type=int, default=1)
    parser.add_argument("--write-workers", type=int, default=1)
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--web-threads", type=int, default=8)
    parser.add_argument("--split", action="store_true", help="hot-path and mutation gRPC pools (ADR 1101)")
    parser.add_argument("--compare", action="store_true", help="one pool, then split, same dataset and rate")
    parser.add_argument(
        "--pin", action="store_true", help="the ValidateLease pool and the generator on CPU 0; the rest on CPU 1"
    )
    parser.add_argument("--record", action="store_true", help="append the result to bench/RESULTS.md")
    args = parser.parse_args(argv)

    if args.pin:
        os.sched_setaffinity(0, {0})  # the generator beside the ValidateLease pool in both shapes (same share)
    writes = args.rate * args.duration * (args.write_share + args.rest_share)
    free = args.free or int(writes / args.tenants) + 50
    criteria = int(args.rate * args.duration * args.rest_share * 0.5) + 200
    shapes = [False, True] if args.compare else [args.split]
    started = datetime.now(UTC)
    header = machine()
    summaries = []
    for split in shapes:
        stack = Stack(
            db_suffix="mix",
            grpc_workers=args.grpc_workers,
            write_workers=args.write_workers,
            web_workers=args.web_workers,
            web_threads=args.web_threads,
            split=split,
            pin=args.pin,
        )
        try:
            stack.prepare()
            data = stack.seed(
                [
                    "--tenants",
                    str(args.tenants),
                    "--leases",
                    str(args.leases),
                    "--free",
                    str(free),
                    "--criteria",
                    str(criteria),
                    "--token-ttl",
                    str(int(args.duration) + 900),
                ]
            )
            stack.start()
            label = "split pools (hot + mutation)" if split else "one pool"
            summaries.append(measure(stack, data, args, label))
        finally:
            stack.stop()
    lines = [
        f"## Lifecycle mix (issue 11) — {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {header}. Command: `python bench/lifecycle_mix/run.py {' '.join(argv or sys.argv[1:])}`; "
        f"gRPC workers {args.grpc_workers} (+{args.write_workers} mutation workers when split), gunicorn "
        f"{args.web_workers}×{args.web_threads}, {args.tenants} tenants × {args.leases} leases; shares: "
        f"ValidateLease {1 - args.write_share - args.rest_share:.2f}, gRPC writes {args.write_share}, "
        f"REST {args.rest_share}.",
        "",
    ]
    for summary in summaries:
        lines += table(summary)
    text = "\n".join(lines)
    print(text)
    (OUT / f"mix-{started:%Y%m%dT%H%M%S}.json").write_text(json.dumps(summaries, indent=2))
    if args.record:
        with RESULTS.open("a") as fh:
            fh.write("\n" + text + "\n")
    bad = any(s["wrong_answers"] for s in summaries)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
