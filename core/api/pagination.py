"""Cursor pagination with a stable order (DESIGN §3.2).

Each view sets `ordering` to a tuple ending in a unique column, so a page boundary never
repeats or skips a row while the table changes underneath.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import CursorPagination


class StableCursorPagination(CursorPagination):
    page_size_query_param = "page_size"
    ordering = ("-id",)

    @property
    def max_page_size(self) -> int:  # type: ignore[override]
        return settings.API_MAX_PAGE_SIZE

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
