"""The committed generated code must be what `make proto` produces from the proto."""

from __future__ import annotations

import json
from pathlib import Path

from grpc_server import codegen


def test_committed_generated_code_matches_the_proto(tmp_path: Path) -> None:
    fresh = codegen.generate(tmp_path)
    assert fresh, "codegen produced nothing"
    stale = [
        str(path.relative_to(tmp_path))
        for path in fresh
        if not (codegen.OUT_DIR / path.relative_to(tmp_path)).exists()
        or (codegen.OUT_DIR / path.relative_to(tmp_path)).read_bytes() != path.read_bytes()
    ]
    assert not stale, f"generated code is stale, run `make proto`: {stale}"


def test_generated_module_imports_without_clashing_with_the_numbering_app() -> None:
    from grpc_server.gen.numbering.v1 import numbering_pb2, numbering_pb2_grpc

    assert numbering_pb2.DESCRIPTOR.package == "numbering.v1"
    assert hasattr(numbering_pb2_grpc, "NumberingServiceServicer")
    assert [m.name for m in numbering_pb2.DESCRIPTOR.services_by_name["NumberingService"].methods] == [
        "ValidateLease",
        "Lookup",
        "Reserve",
        "Assign",
        "Release",
        "Recall",
        "ExtendReservation",
        "ValidateLeases",
        "ValidateLeaseStream",
    ]


def test_the_proto_stays_wire_compatible_with_the_released_v1() -> None:
    """Backward compatibility (ADR 1640): every message, field (number and type), enum value
    and method of the released v1 contract (released_numbering_v1.json, frozen from the
    descriptor before ExtendReservation) is still there, unchanged. Additions are free."""
    from grpc_server.gen.numbering.v1 import numbering_pb2

    released = json.loads((Path(__file__).parent / "released_numbering_v1.json").read_text())
    d = numbering_pb2.DESCRIPTOR
    broken = []
    for message, fields in released["messages"].items():
        now = {f.name: [f.number, f.type] for f in d.message_types_by_name[message].fields}
        broken += [f"{message}.{name}" for name, spec in fields.items() if now.get(name) != spec]
    for enum, values in released["enums"].items():
        now_values = {v.name: v.number for v in d.enum_types_by_name[enum].values}
        broken += [f"{enum}.{name}" for name, number in values.items() if now_values.get(name) != number]
    methods = {m.name: [m.input_type.name, m.output_type.name] for m in d.services_by_name["NumberingService"].methods}
    broken += [f"rpc {name}" for name, spec in released["methods"].items() if methods.get(name) != spec]
    assert not broken, f"changes that break clients of the released v1: {broken}"
