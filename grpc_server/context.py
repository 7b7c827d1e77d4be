"""Per-call context the interceptor sets for the servicer (the caller's certificate CN)."""

from __future__ import annotations

from contextvars import ContextVar

# "insecure-local" when the port is plaintext (GRPC_INSECURE=1, development only).
INSECURE_CALLER = "insecure-local"
current_caller: ContextVar[str] = ContextVar("grpc_caller", default=INSECURE_CALLER)
