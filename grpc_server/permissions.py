"""Which client certificate CN may call which method (DESIGN §3.1).

The default matrix is the spec's; GRPC_CLIENT_PERMISSIONS (JSON {CN: [methods]}) replaces
it as a whole, so an operator reading the variable sees the complete allowlist.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

METHODS = frozenset({"ValidateLease", "Lookup", "Reserve", "Assign", "Release", "Recall"})

DEFAULT_PERMISSIONS: dict[str, frozenset[str]] = {
    "sms-orchestrator": frozenset({"ValidateLease", "Lookup"}),
    "routing-engine": frozenset({"ValidateLease", "Lookup"}),
    "sender-id-registry": frozenset({"Lookup"}),
    "billing-service": frozenset({"Lookup"}),
    "customer-portal-bff": frozenset({"Lookup", "Reserve", "Assign", "Release"}),
    "compliance-service": frozenset({"Lookup", "Recall"}),
}


def parse_permissions(raw: str) -> dict[str, frozenset[str]]:
    """Parse GRPC_CLIENT_PERMISSIONS; a malformed value stops the process at start."""
    if not raw.strip():
        return dict(DEFAULT_PERMISSIONS)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"GRPC_CLIENT_PERMISSIONS is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise ImproperlyConfigured(
            'GRPC_CLIENT_PERMISSIONS must be a non-empty JSON object {"<CN>": ["<Method>", ...]}'
        )
    result: dict[str, frozenset[str]] = {}
    for cn, methods in data.items():
        if not isinstance(cn, str) or not cn.strip():
            raise ImproperlyConfigured("GRPC_CLIENT_PERMISSIONS: every key must be a non-empty certificate CN")
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise ImproperlyConfigured(f"GRPC_CLIENT_PERMISSIONS[{cn!r}] must be a list of method names")
        unknown = sorted(set(methods) - METHODS)
        if unknown:
            raise ImproperlyConfigured(
                f"GRPC_CLIENT_PERMISSIONS[{cn!r}]: unknown method(s) {unknown}; known: {sorted(METHODS)}"
            )
        result[cn] = frozenset(methods)
    return result


def configured_permissions() -> dict[str, frozenset[str]]:
    return parse_permissions(settings.GRPC_CLIENT_PERMISSIONS_JSON)
