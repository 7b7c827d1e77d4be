"""Cursor pagination with a stable order (DESIGN §3.2).

Each view sets `ordering` to a tuple ending in a unique column, so a page boundary never
repeats or skips a row while the table changes underneath.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.pagination import CursorPagination

_BAD_CURSOR = {"cursor": ["is not a cursor this API issued (tampered or truncated); start again without it"]}


class StableCursorPagination(CursorPagination):
    page_size_query_param = "page_size"
    ordering = ("-id",)

    @property
    def max_page_size(self) -> int:  # type: ignore[override]
        return settings.API_MAX_PAGE_SIZE

    def decode_cursor(self, request):  # type: ignore[no-untyped-def]
        """A tampered cursor is the caller's mistake: 400 naming `cursor` (DRF says 404)."""
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ApiValidationError(_BAD_CURSOR) from None
        if cursor is not None and cursor.position is not None and "\x00" in cursor.position:
            raise ApiValidationError(_BAD_CURSOR)
        return cursor

    def paginate_queryset(self, queryset, request, view=None) -> Any:  # type: ignore[no-untyped-def]
        # A cursor decodes to a position the ordering column cannot hold (a date that is
        # not one, a huge offset): Django raises while building the filter (issue 13 item 9).
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise ApiValidationError(_BAD_CURSOR) from None

    def get_ordering(self, request, queryset, view):  # type: ignore[no-untyped-def]
        return getattr(view, "ordering", None) or self.ordering

    def get_page_size(self, request):  # type: ignore[no-untyped-def]
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        from rest_framework.exceptions import ValidationError

        try:
            size = int(raw)
        except ValueError:
            raise ValidationError({"page_size": [f"must be an integer between 1 and {self.max_page_size}"]}) from None
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({"page_size": [f"must be between 1 and {self.max_page_size}"]})
        return size
