"""One number shape on every surface: the snapshot, the REST serializer, the gRPC message
and the lease cache entry are built from numbering.snapshots and must stay in step."""

from __future__ import annotations

import pytest

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.servicer import number_message
from numbering.apis.serializers import NumberSerializer
from numbering.lifecycle import State
from numbering.models import Lease
from numbering.snapshots import NUMBER_FIELDS, cache_entry_of, number_snapshot
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db


def test_snapshot_rest_and_grpc_carry_the_same_number_fields(alice):
    number = number_in(State.ASSIGNED, alice)
    lease = Lease.objects.get(number=number, status=Lease.Status.ACTIVE)
    snapshot = number_snapshot(number, lease)
    assert tuple(k for k in snapshot if k != "lease") == NUMBER_FIELDS
    rest = NumberSerializer(number).data
    assert set(NUMBER_FIELDS) <= set(rest)
    assert {k: rest[k] for k in ("number", "kind", "state", "operator_code", "version")} == {
        k: snapshot[k] for k in ("number", "kind", "state", "operator_code", "version")
    }
    assert str(rest["tenant_id"]) == snapshot["tenant_id"]
    proto_fields = {f.name for f in pb.Number.DESCRIPTOR.fields}
    assert set(NUMBER_FIELDS) | {"lease"} == proto_fields
    message = number_message(snapshot)
    assert message.number == snapshot["number"] and message.version == snapshot["version"]
    assert message.lease.lease_id == snapshot["lease"]["lease_id"]


def test_cache_entry_is_derived_from_the_snapshot(alice):
    number = number_in(State.ASSIGNED, alice)
    lease = Lease.objects.get(number=number, status=Lease.Status.ACTIVE)
    entry = cache_entry_of(number_snapshot(number, lease))
    assert entry == {
        "state": "ASSIGNED",
        "tenant_id": str(alice.id),
        "lease_id": str(lease.id),
        "expires_at": lease.expires_at.isoformat(),
        "kind": number.kind,
        "operator_code": number.issuer.code,
    }
