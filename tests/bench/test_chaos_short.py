"""The short Redis and NATS outage drills (issue 15; `make drill-redis-outage` /
`make drill-nats-outage` run the long ones with Prometheus and the alerts): about 20 s of
the lifecycle mix each, the dependency killed for 8 s mid-load, every correctness check."""

from __future__ import annotations

import argparse

import pytest

from bench.chaos.run import run_drill

pytestmark = pytest.mark.committed


def short(drill: str) -> argparse.Namespace:
    args = argparse.Namespace(rate=80.0, before=5.0, outage=8.0, after=8.0, settle=0.0, compress=30, no_alerts=True)
    args.total = args.before + args.outage + args.after
    return args


@pytest.mark.parametrize("drill", ["redis-outage", "nats-outage"])
def test_short_drill_passes(drill: str) -> None:
    outcome = run_drill(drill, short(drill))
    failed = [(name, detail) for name, ok, detail in outcome.checks if not ok]
    assert not failed, failed
    assert outcome.windows["during"]["grpc_writes"]["n"] > 0
