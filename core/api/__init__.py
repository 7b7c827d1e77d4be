"""Shared REST plumbing: JWT auth, the role matrix, problem+json errors, pagination, base views.

Apps' `apis.py` modules build their endpoints from these pieces:

- `core.api.auth.JWTAuthentication`  (RS256 JWT → `request.user` = `Principal`)
- `core.api.permissions.MATRIX`      (the one role × endpoint/action table) + `RolePermission`
- `core.api.errors`                  (RFC 7807 handler; DomainError → ERROR_STATUS)
- `core.api.views`                   (`ScopedAPIView` / `ScopedViewSet`: one transaction + RLS scope per request)
- `core.api.pagination`              (`StableCursorPagination`)
"""
