"""The short chaos drills (issue 15; `make drills` runs the long ones, the outages with
Prometheus and the alerts): about 20 s of the lifecycle mix each, Redis or NATS killed for 8 s
or the relay, the mutation gRPC pool or the Celery worker (mid-import) SIGKILLed and restarted
after 4 s, or PostgreSQL partitioned from the service for 8 s, every correctness check."""

from __future__ import annotations

import argparse

import pytest

from bench.chaos.run import run_drill

pytestmark = pytest.mark.committed


def short(drill: str) -> argparse.Namespace:
    outage = 4.0 if drill.endswith("kill") else 8.0
    args = argparse.Namespace(
        rate=80.0,
        before=5.0,
        outage=outage,
        after=15.0 if drill == "postgres-partition" else 8.0,  # recovery is judged up to 15 s after the heal
        settle=0.0,
        compress=30,
        no_alerts=True,
        import_rows=40_000,  # celery-worker-kill: big enough that the kill lands mid-import
        visibility=10.0,
    )
    args.total = args.before + args.outage + args.after
    return args


@pytest.mark.parametrize(
    "drill",
    [
        "redis-outage",
        "nats-outage",
        "relay-kill",
        "grpc-worker-kill",
        "celery-worker-kill",
        "redis-memory-pressure",
        "postgres-partition",
    ],
)
def test_short_drill_passes(drill: str) -> None:
    outcome = run_drill(drill, short(drill))
    failed = [(name, detail) for name, ok, detail in outcome.checks if not ok]
    assert not failed, failed
    assert outcome.windows["during"]["grpc_writes"]["n"] > 0
