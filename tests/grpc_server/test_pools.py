"""The hot-path and mutation pools (issue 11 item 1, ADR 1101): each gRPC process serves only
its pool's methods; a caller reaching the wrong pool is refused, and each pool's allowlist is the
configured table narrowed to what it serves."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from django.test import override_settings

from core.authz import (
    GRPC_DEFAULT_PERMISSIONS,
    GRPC_METHODS,
    GRPC_POOLS,
    GRPC_VALIDATE_METHODS,
    configured_grpc_permissions,
    grpc_pool_permissions,
)
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from numbering.lifecycle import State
from tests.grpc_server.conftest import as_platform
from tests.grpc_server.test_rpcs import BFF
from tests.numbering.helpers import number_in


def test_the_pools_cover_every_method_and_only_lookup_is_in_both() -> None:
    assert GRPC_POOLS["hot"] | GRPC_POOLS["mutations"] == GRPC_METHODS == GRPC_POOLS["all"]
    assert GRPC_POOLS["hot"] & GRPC_POOLS["mutations"] == {"Lookup"}
    assert "ValidateLease" not in GRPC_POOLS["mutations"]
    assert not {"Reserve", "Assign", "Release", "Recall"} & GRPC_POOLS["hot"]


def test_a_pool_narrows_each_grant_and_keeps_how_the_cn_acts() -> None:
    hot = grpc_pool_permissions(GRPC_DEFAULT_PERMISSIONS, "hot")
    mutations = grpc_pool_permissions(GRPC_DEFAULT_PERMISSIONS, "mutations")
    assert hot["sms-orchestrator"] == {"ValidateLease", "ValidateLeases", "ValidateLeaseStream", "Lookup"}
    assert "sms-orchestrator" in mutations and mutations["sms-orchestrator"] == {"Lookup"}
    assert hot[BFF] == {"Lookup"} and hot[BFF].acts_for_tenant
    assert {"Reserve", "Assign", "Release"} <= mutations[BFF] and mutations[BFF].acts_for_tenant
    assert not GRPC_VALIDATE_METHODS & set().union(*mutations.values())


def test_the_setting_picks_the_pool_and_refuses_an_unknown_one() -> None:
    with override_settings(GRPC_POOL="hot"):
        assert "Reserve" not in set().union(*configured_grpc_permissions().values())
    with override_settings(GRPC_POOL="all"):
        assert configured_grpc_permissions()[BFF] == GRPC_DEFAULT_PERMISSIONS[BFF]
    import subprocess
    import sys

    from tests.grpc_server.conftest import subprocess_db_env

    probe = subprocess.run(  # noqa: S603 - the settings module refuses the value at import
        [sys.executable, "-c", "import django; django.setup()"],
        env={**subprocess_db_env(), "GRPC_POOL": "everything"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode != 0 and "GRPC_POOL='everything' must be one of" in probe.stderr


def test_the_hot_pool_refuses_mutations_and_the_mutation_pool_refuses_validations(
    start_server: Any, connect: Any, alice: Any
) -> None:
    hot = start_server(permissions=grpc_pool_permissions(GRPC_DEFAULT_PERMISSIONS, "hot"))
    write = start_server(permissions=grpc_pool_permissions(GRPC_DEFAULT_PERMISSIONS, "mutations"))
    n = as_platform(lambda: number_in(State.AVAILABLE, alice))
    leased = as_platform(lambda: number_in(State.ASSIGNED, alice))

    answer = connect(hot).ValidateLease(pb.ValidateLeaseRequest(number=leased.number, tenant_id=str(alice.id)))
    assert answer.valid
    with pytest.raises(grpc.RpcError) as refused:
        connect(hot, BFF).Reserve(pb.ReserveRequest(number=n.number, tenant_id=str(alice.id)))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    reserved = connect(write, BFF).Reserve(pb.ReserveRequest(number=n.number, tenant_id=str(alice.id)))
    assert reserved.number.state == pb.RESERVED
    with pytest.raises(grpc.RpcError) as refused:
        connect(write).ValidateLease(pb.ValidateLeaseRequest(number=leased.number, tenant_id=str(alice.id)))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Lookup is served by both (the portal and compliance use it beside their mutations).
    assert connect(write, BFF).Lookup(pb.LookupRequest(number=n.number)).number.number == n.number


def test_an_unknown_pool_has_no_allowlist() -> None:
    with pytest.raises(KeyError):
        grpc_pool_permissions(GRPC_DEFAULT_PERMISSIONS, "nonsense")
