"""The role × endpoint/action matrix (DESIGN §3.2) — the ONE table — and the DRF
permission class that reads it.

Every API view names, per viewset action or HTTP method, the matrix key it needs
(`permission_keys`). A view or action with no key is denied (fail closed), and the
role-matrix test walks every route × every role against this table.

To add an endpoint: add its key(s) here with the roles allowed, set `permission_keys`
on the view, and add the route to tests/api/test_role_matrix.py's ENDPOINTS.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from config.roles import (
    AUDITOR,
    COMMERCE_OPS,
    COMPLIANCE_OFFICER,
    NUMBERING_ADMIN,
    REGULATOR_EXPORTER,
    REGULATOR_PORTAL,
    TENANT_ADMIN,
    TENANT_VIEWER,
)

_A, _O, _C, _AU, _R = NUMBERING_ADMIN, COMMERCE_OPS, COMPLIANCE_OFFICER, AUDITOR, REGULATOR_EXPORTER
_TA, _TV = TENANT_ADMIN, TENANT_VIEWER
_RP = REGULATOR_PORTAL


def _r(*names: str) -> frozenset[str]:
    return frozenset(names)


# key -> roles allowed. Admin keys only ever list staff roles, tenant keys only tenant roles.
MATRIX: dict[str, frozenset[str]] = {
    # --- admin surface /api/admin/v1/ ---
    "admin.issuers.read": _r(_A, _O, _C, _AU, _R),
    "admin.signing_keys.read": _r(_A, _O, _AU),
    # Installing/revoking an MNO's key is inventory work (ADR 0900): admin and commerce ops.
    "admin.signing_keys.write": _r(_A, _O),
    "admin.contracts.read": _r(_A, _O, _C, _AU, _R),
    "admin.contracts.suspend": _r(_A, _O),
    "admin.contracts.terminate": _r(_A),
    "admin.blocks.read": _r(_A, _O, _AU, _R),
    "admin.imports.read": _r(_A, _O, _AU),
    "admin.imports.write": _r(_A, _O),
    "admin.numbers.read": _r(_A, _O, _C, _AU),
    "admin.numbers.reserve": _r(_A, _O),
    "admin.numbers.assign": _r(_A, _O),
    "admin.numbers.release": _r(_A, _O),
    "admin.numbers.recall": _r(_A, _O, _C),
    "admin.numbers.retire": _r(_A, _O),
    "admin.numbers.reinstate": _r(_A, _O),
    "admin.inventory_pools.read": _r(_A, _O, _C, _AU),
    "admin.tenant_pools.read": _r(_A, _O, _C, _AU),
    "admin.tenants.read": _r(_A, _O, _C, _AU),
    "admin.leases.read": _r(_A, _O, _C, _AU),
    "admin.leases.renew": _r(_A, _O),
    "admin.leases.auto_renew": _r(_A, _O),
    "admin.quarantine_policies.read": _r(_A, _O, _C, _AU),
    # Legal approves cool-offs; only the numbering admin records an approved change.
    "admin.quarantine_policies.write": _r(_A),
    # Regulator exports (ADR 0900): the export roles of DESIGN §7 plus the auditor (read-only).
    # regulator-portal-service (issue 17, ADR 1701) reads and verifies exports, nothing else.
    "admin.exports.read": _r(_A, _C, _AU, _R, _RP),
    "admin.exports.write": _r(_A, _C, _R),
    "admin.exports.verify": _r(_A, _C, _AU, _R, _RP),
    # The ad-hoc inventory CSV is the numbers list as a file: the roles that may read numbers.
    "admin.exports.inventory": _r(_A, _O, _C, _AU),
    "admin.audit.read": _r(_A, _O, _C, _AU),
    "admin.audit.verify": _r(_A, _AU),
    # --- tenant portal /api/tenant/v1/ (the tenant always comes from the token) ---
    "tenant.numbers.search": _r(_TA, _TV),
    "tenant.numbers.read": _r(_TA, _TV),
    "tenant.numbers.assign": _r(_TA),
    "tenant.numbers.release": _r(_TA),
    "tenant.reservations.read": _r(_TA, _TV),
    "tenant.reservations.create": _r(_TA),
    "tenant.reservations.cancel": _r(_TA),
    "tenant.leases.read": _r(_TA, _TV),
    "tenant.leases.auto_renew": _r(_TA),
    "tenant.pool.read": _r(_TA, _TV),
}


def allowed(key: str, role_names: frozenset[str]) -> bool:
    return bool(MATRIX.get(key, frozenset()) & role_names)


def permission_key(request: Request, view: Any) -> str | None:
    keys: dict[str, str] = getattr(view, "permission_keys", {}) or {}
    action = getattr(view, "action", None)
    if action and action in keys:
        return keys[action]
    return keys.get(request.method.lower()) if request.method else None


class RolePermission(permissions.BasePermission):
    message = "your roles do not allow this action"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False):
            raise exceptions.NotAuthenticated("a bearer JWT is required (Authorization: Bearer <token>)")
        if request.method == "OPTIONS":
            return True
        key = permission_key(request, view)
        method = (request.method or "").lower()
        handled = view.action_map.get(method) if hasattr(view, "action_map") else getattr(view, method, None)
        if not handled:
            raise exceptions.MethodNotAllowed(request.method)
        if key is None or key not in MATRIX:
            return False
        if not allowed(key, user.roles):
            raise exceptions.PermissionDenied(
                f"your roles do not allow {key} (allowed: {', '.join(sorted(MATRIX[key]))})"
            )
        return True
