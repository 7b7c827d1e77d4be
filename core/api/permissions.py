"""The DRF permission class that reads the role × endpoint/action matrix (core.authz.MATRIX,
the ONE table).

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

from core.authz import MATRIX, allowed


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
            # Which roles would do is not the caller's to learn (issue 13 item 9).
            raise exceptions.PermissionDenied(f"your roles do not allow {key}")
        return True
