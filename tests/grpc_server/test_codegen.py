"""The committed generated code must be what `make proto` produces from the proto."""

from __future__ import annotations

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
    ]
