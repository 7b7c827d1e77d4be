"""Staff in the Django admin act for the platform: their requests read and write in
platform RLS scope (DESIGN §9: platform scope sees all rows; tenants never log in here).

Without this the app role would only see AVAILABLE numbers in the admin. The scope is
transaction-local (numbering.rls), so the request runs in one transaction — the admin's
TemplateResponse is rendered inside it (Django renders before middleware unwinds).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from numbering.rls import rls_scope


class StaffPlatformScopeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix = "/" + getattr(settings, "ADMIN_URL_PREFIX", "admin/").lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if not (request.path.startswith(self.prefix) and user is not None and user.is_active and user.is_staff):
            return self.get_response(request)
        with transaction.atomic(), rls_scope(platform=True):
            return self.get_response(request)
