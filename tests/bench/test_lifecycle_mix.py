"""The mix generator itself (issue 11 item 3): against the real service it completes every
operation with the right answers, and its report counts what it saw. The drills reuse it."""

from __future__ import annotations

import grpc
import pytest

from bench.lifecycle_mix.mix import PORTAL_CN, Shares, _creds, is_error, percentile, run_mix
from bench.lifecycle_mix.stack import Stack
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc

pytestmark = pytest.mark.committed


@pytest.fixture(scope="module")
def stack():
    s = Stack(db_suffix="mixtest", split=True)
    s.prepare()
    data = s.seed(["--tenants", "3", "--leases", "5", "--free", "40", "--criteria", "40"])
    s.start()
    yield s, data
    s.stop()


def test_the_mix_answers_right_and_reports_each_operation(stack) -> None:
    s, data = stack
    report = run_mix(s.target(), data, rate=60, duration=4, shares=Shares(0.6, 0.3, 0.1))
    summary = report.summary()
    assert summary["offered"] == 240 and summary["completed"] == 240 and summary["shed"] == 0
    assert summary["wrong_answers"] == 0, summary
    assert summary["errors"] == 0, summary
    assert summary["false_conflicts"] == 0, summary
    ops = summary["ops"]
    assert {"validate.valid", "grpc.reserve"} <= set(ops), ops
    assert ops["grpc.reserve"]["outcomes"].get("OK", 0) > 0


def test_the_hot_pool_takes_no_mutation(stack) -> None:
    """Split pools (ADR 1101): the hot pool's CN allowlist has no mutation and no portal."""
    s, data = stack
    assert s.ports["grpc_hot"] != s.ports["grpc_write"]
    target = s.target()
    channel = grpc.secure_channel(
        target.grpc_hot, _creds(target.certs, PORTAL_CN), options=[("grpc.ssl_target_name_override", "localhost")]
    )
    with channel, pytest.raises(grpc.RpcError) as refused:
        pb_grpc.NumberingServiceStub(channel).Reserve(
            pb.ReserveRequest(number=data.free[data.tenants[0]["id"]][0], tenant_id=data.tenants[0]["id"]), timeout=5
        )
    assert refused.value.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def test_the_windows_slice_the_run_by_due_time(stack) -> None:
    s, data = stack
    report = run_mix(s.target(), data, rate=40, duration=2, shares=Shares(1.0, 0.0, 0.0))
    first, second = report.window(0, 1), report.window(1, 2)
    assert len(first.samples) + len(second.samples) == len(report.samples) == 80


def test_helpers() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert is_error("UNAVAILABLE") and is_error("503") and not is_error("CONFLICT") and not is_error("409")
