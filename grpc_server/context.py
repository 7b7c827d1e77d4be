"""Per-call context the interceptor sets for the servicer: the caller's certificate CN and
whether that CN acts for a tenant (core.authz GrpcGrant)."""

from __future__ import annotations

from contextvars import ContextVar

# "insecure-local" when the port is plaintext (GRPC_INSECURE=1, development only).
INSECURE_CALLER = "insecure-local"
current_caller: ContextVar[str] = ContextVar("grpc_caller", default=INSECURE_CALLER)
current_caller_acts_for_tenant: ContextVar[bool] = ContextVar("grpc_caller_acts_for_tenant", default=False)
