"""Row-level security scope for the Django admin: staff act for the platform.

Each admin request by an authenticated staff user runs in one transaction with the
platform RLS scope; anything else (login page, anonymous) runs unscoped, i.e. sees only
AVAILABLE inventory and no tenant rows.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from core.rls import rls_scope


class AdminPlatformScopeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if request.path.startswith("/admin/") and user is not None and user.is_active and user.is_staff:
            with transaction.atomic(), rls_scope(platform=True):
                return self.get_response(request)
        return self.get_response(request)
