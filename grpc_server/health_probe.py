"""`grpc_health_probe` for the image: the gRPC health check the k8s probes exec.

The kubelet's built-in gRPC probe cannot present a client certificate, so deploy/k8s/grpc.yaml
execs `grpc_health_probe` with the pod's own certificate. The Go binary of that name cannot be
downloaded here (no registry or GitHub release is reachable from the build machine), so the
image installs this module under that name instead (Dockerfile). It accepts the Go tool's
flags (the subset the manifests use, same spellings, `-flag=value` or `-flag value`) and
exits with its codes, so the manifests work unchanged with either:

    0 SERVING   1 bad arguments   2 connection failed   3 RPC failed   4 NOT_SERVING
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

OK, BAD_ARGUMENTS, CONNECTION_FAILED, RPC_FAILED, UNHEALTHY = 0, 1, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(BAD_ARGUMENTS)


def _seconds(value: str) -> float:
    """Go durations as the manifests write them: 1s, 500ms, 2m (a bare number is seconds)."""
    suffix = next((s for s in ("ms", "s", "m") if value.endswith(s)), "")
    number, factor = value[: len(value) - len(suffix)], {"ms": 0.001, "s": 1.0, "m": 60.0, "": 1.0}[suffix]
    try:
        seconds = float(number) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration (e.g. 1s, 500ms)") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive")
    return seconds


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="grpc_health_probe", description="gRPC health check (grpc.health.v1)", allow_abbrev=False)
    parser.add_argument("-addr", required=True, help="host:port of the gRPC server")
    parser.add_argument("-service", default="", help="service name to check (empty = the server)")
    parser.add_argument("-tls", action="store_true", help="use TLS")
    parser.add_argument("-tls-ca-cert", dest="ca", default="", help="CA bundle that signed the server")
    parser.add_argument("-tls-client-cert", dest="client_cert", default="", help="client certificate (mTLS)")
    parser.add_argument("-tls-client-key", dest="client_key", default="", help="client private key (mTLS)")
    parser.add_argument("-tls-server-name", dest="server_name", default="", help="name to verify the server as")
    parser.add_argument("-connect-timeout", dest="connect_timeout", type=_seconds, default=1.0)
    parser.add_argument("-rpc-timeout", dest="rpc_timeout", type=_seconds, default=1.0)
    args = parser.parse_args(list(argv))
    tls_files = [args.ca, args.client_cert, args.client_key]
    if any(tls_files) and not args.tls:
        parser.error("-tls-* options need -tls")
    if bool(args.client_cert) != bool(args.client_key):
        parser.error("-tls-client-cert and -tls-client-key go together")
    files = (("-tls-ca-cert", args.ca), ("-tls-client-cert", args.client_cert), ("-tls-client-key", args.client_key))
    for flag, path in files:
        if path and not Path(path).is_file():
            parser.error(f"{flag}: {path} is not a readable file")
    return args


def _channel(args: argparse.Namespace) -> grpc.Channel:
    if not args.tls:
        return grpc.insecure_channel(args.addr)
    credentials = grpc.ssl_channel_credentials(
        Path(args.ca).read_bytes() if args.ca else None,
        Path(args.client_key).read_bytes() if args.client_key else None,
        Path(args.client_cert).read_bytes() if args.client_cert else None,
    )
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(args.addr, credentials, options=options)


def probe(argv: Sequence[str]) -> tuple[int, str]:
    """(exit code, the line to print)."""
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or BAD_ARGUMENTS), ""
    with _channel(args) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=args.connect_timeout)
        except grpc.FutureTimeoutError:
            return CONNECTION_FAILED, f"timeout: failed to connect service {args.addr!r} within {args.connect_timeout}s"
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.rpc_timeout
            )
        except grpc.RpcError as exc:
            code, details = (exc.code(), exc.details()) if isinstance(exc, grpc.Call) else (None, str(exc))
            return RPC_FAILED, f"error: health rpc failed: {code}: {details}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return UNHEALTHY, f"service unhealthy (responded with {status!r})"
    return OK, f"status: {status}"


def main(argv: Sequence[str] | None = None) -> int:
    code, line = probe(sys.argv[1:] if argv is None else argv)
    if line:
        print(line, file=sys.stdout if code == OK else sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover - exercised as a subprocess by the tests
    raise SystemExit(main())
