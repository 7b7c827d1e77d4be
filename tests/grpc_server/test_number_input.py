"""Numbers as people in Afghanistan type them, over gRPC (issue 16, ADR 1600): the servicer's
inputs go through core.formats like every other entry, in the test server and in
`manage.py grpcserver` as operators run it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc
from numbering.lifecycle import State
from numbering.models import Number
from tests.factories import NumberFactory
from tests.grpc_server.conftest import as_platform, free_port, subprocess_db_env
from tests.grpc_server.test_drain import ROOT, channel_for, wait_serving
from tests.grpc_server.test_rpcs import error_of
from tests.numbering.helpers import number_in

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def typed_forms(e164: str) -> list[str]:
    national = "0" + e164[3:]
    return [
        national.translate(PERSIAN),
        national.translate(ARABIC_INDIC),
        "00" + e164[1:],
        e164[:5] + e164[5].translate(PERSIAN) + e164[6:],  # the issue's +937۹… case
        f"{national[:3]} {national[3:6]} {national[6:]}".translate(PERSIAN),
    ]


def test_validate_lease_and_lookup_read_persian_and_arabic_indic_digits(
    grpc_server: Any, connect: Any, alice: Any
) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    orchestrator = connect(grpc_server, "sms-orchestrator")
    bff = connect(grpc_server, "customer-portal-bff")
    for typed in typed_forms(n.number):
        answer = orchestrator.ValidateLease(pb.ValidateLeaseRequest(number=typed, tenant_id=str(alice.id)), timeout=10)
        assert answer.valid, typed
        assert bff.Lookup(pb.LookupRequest(number=typed), timeout=10).number.number == n.number


def test_a_fixed_line_number_is_invalid_argument_naming_the_field(grpc_server: Any, connect: Any, alice: Any) -> None:
    bff = connect(grpc_server, "customer-portal-bff")
    code, reason, metadata = error_of(
        bff.Reserve, pb.ReserveRequest(number="۰۲۰۲۲۳۴۵۶۷", tenant_id=str(alice.id)), timeout=10
    )
    assert (code, reason, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR", {"field": "number"})


@pytest.mark.usefixtures("committed")
def test_the_real_grpcserver_process_reserves_a_number_typed_in_persian_digits(
    pki: Any, alice: Any, tmp_path: Path
) -> None:
    n = NumberFactory()
    port = free_port()
    env = {
        **subprocess_db_env(),
        "GRPC_TLS_CERT_FILE": str(pki.server_cert),
        "GRPC_TLS_KEY_FILE": str(pki.server_key),
        "GRPC_TLS_CLIENT_CA_FILE": str(pki.ca),
    }
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "grpcserver", "--workers", "1", "--port", str(port), "--metrics-port", "0"],
        cwd=ROOT,
        env=env,
        stderr=(tmp_path / "grpcserver.log").open("wb"),
    )
    try:
        wait_serving(pki, port, process)
        with channel_for(pki, port) as channel:
            stub = pb_grpc.NumberingServiceStub(channel)
            typed = ("0" + n.number[3:]).translate(PERSIAN)
            reserved = stub.Reserve(pb.ReserveRequest(number=typed, tenant_id=str(alice.id)), timeout=30)
            assert (reserved.number.number, reserved.number.state) == (n.number, pb.RESERVED)
            found = stub.Lookup(pb.LookupRequest(number=typed.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "٠١٢٣٤٥٦٧٨٩"))))
            assert found.number.number == n.number
        stored = as_platform(lambda: list(Number.objects.values_list("number", "state")))
        assert stored == [(n.number, "RESERVED")]  # one row, ASCII: no second "number"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0, (tmp_path / "grpcserver.log").read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
