"""Refuse oversize uploads before Django reads them (issue 13 item 10).

Django parses multipart bodies lazily, but the first touch of request.POST/FILES (the CSRF
middleware, a form, DRF's parser) streams the whole body to a temporary file before any view
can say "too large". This middleware runs first and answers 413 from the declared
Content-Length alone: a multipart body over INVENTORY_IMPORT_MAX_BYTES plus a small allowance
for the form's other fields is never read. A multipart body without a Content-Length
(chunked) is refused with 411, since its size cannot be checked before reading it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.api.errors import problem_response

MULTIPART_ALLOWANCE = 64 * 1024  # boundaries, headers and the small form fields beside the file


def upload_limit() -> int:
    return settings.INVENTORY_IMPORT_MAX_BYTES + MULTIPART_ALLOWANCE


class UploadSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Both the CGI variable and a raw header named like it (HTTP_CONTENT_LENGTH) end up as
        # request.headers["Content-Length"], which django-prometheus reads as an int.
        declared = [request.META.get(k) or "" for k in ("CONTENT_LENGTH", "HTTP_CONTENT_LENGTH")]
        if any(value and not value.isdigit() for value in declared):
            # A hostile or broken client: nothing downstream (metrics, parsers) may trust it.
            return problem_response(
                400, "VALIDATION_ERROR", "Content-Length: must be a non-negative integer", instance=request.path
            )
        if request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/"):
            raw = request.META.get("CONTENT_LENGTH") or ""
            if not raw.isdigit():
                return problem_response(
                    411, "LENGTH_REQUIRED", "an upload needs a Content-Length", instance=request.path
                )
            if int(raw) > upload_limit():
                return problem_response(
                    413,
                    "REQUEST_TOO_LARGE",
                    f"the upload is over the limit of {settings.INVENTORY_IMPORT_MAX_BYTES} bytes "
                    "(INVENTORY_IMPORT_MAX_BYTES); nothing was stored",
                    instance=request.path,
                )
        return self.get_response(request)
