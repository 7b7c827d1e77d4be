"""Shared REST plumbing: JWT auth, the role matrix, problem+json errors, pagination, base views.

Apps' `apis.py` modules build their endpoints from these pieces:

- `config.api.auth.JWTAuthentication`  (RS256 JWT → `request.user` = `Principal`)
- `config.api.permissions.MATRIX`      (the one role × endpoint/action table) + `RolePermission`
- `config.api.errors`                  (RFC 7807 handler; DomainError → ERROR_STATUS)
- `config.api.views`                   (`ScopedAPIView` / `ScopedViewSet`: one transaction + RLS scope per request)
- `config.api.pagination`              (`StableCursorPagination`)
"""
