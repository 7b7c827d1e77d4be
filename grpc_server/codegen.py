"""Regenerate the Python code for the gRPC contract (`make proto`).

protoc names generated modules after the proto path (`numbering/v1/numbering_pb2.py`),
and `numbering` is also our Django app, so the generated `_grpc` module's import is
rewritten to the package-qualified `grpc_server.gen.numbering.v1`. The test
tests/grpc_server/test_codegen.py runs this into a temporary directory and fails when
the committed files differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent
PROTO_DIR = ROOT / "protos"
OUT_DIR = ROOT / "gen"
PROTOS = ["numbering/v1/numbering.proto"]
PACKAGE = "grpc_server.gen"


def generate(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *PROTOS,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed: " + " ".join(args))
    written: list[Path] = []
    for proto in PROTOS:
        package_dir = out_dir / Path(proto).parent
        # Packages all the way down so `grpc_server.gen.numbering.v1` imports.
        for directory in [out_dir, *package_dir.relative_to(out_dir).parents, package_dir.relative_to(out_dir)]:
            init = out_dir / directory / "__init__.py"
            if not init.exists():
                init.write_text("")
        module = Path(proto).stem
        dotted = ".".join(Path(proto).parent.parts)
        grpc_file = package_dir / f"{module}_pb2_grpc.py"
        text = grpc_file.read_text()
        text = text.replace(f"from {dotted} import {module}_pb2", f"from {PACKAGE}.{dotted} import {module}_pb2")
        grpc_file.write_text(text)
        written += [package_dir / f"{module}_pb2.py", package_dir / f"{module}_pb2.pyi", grpc_file]
    return written


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR):
        print(path)
