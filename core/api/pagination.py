"""Cursor pagination with a stable order (DESIGN §3.2).

Each view sets `ordering` to a tuple ending in a unique column, so a page boundary never
repeats or skips a row while the table changes underneath.
"""

from __future__ import annotations

from collections.abc import Callable
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


class RowPages:
    """A page source for StableCursorPagination that is not a queryset: the three things its
    cursor algorithm asks of one (`order_by(<ordering>)`, `filter(<field>__gt|__lt=position)`
    and one slice `[offset:offset + size + 1]`) become the arguments of one call
    `fetch(descending=, after=, offset=, limit=)` returning rows (dicts). The cursors, links
    and refusals stay DRF's and this class's, so a page read this way pages exactly like one
    read from a queryset (tests/api/test_search_rows.py). The ordering is one unique column."""

    def __init__(self, fetch: Callable[..., list[dict[str, Any]]]) -> None:
        self.fetch = fetch
        self.field: str | None = None
        self.descending = False
        self.after: Any = None

    def order_by(self, *ordering: str) -> RowPages:
        if len(ordering) != 1:
            raise ValueError("RowPages pages on one unique column")
        self.field, self.descending = ordering[0].lstrip("-"), ordering[0].startswith("-")
        return self

    def filter(self, **position: Any) -> RowPages:
        ((lookup, value),) = position.items()
        field, _, op = lookup.rpartition("__")
        if field != self.field or op != ("lt" if self.descending else "gt"):
            raise ValueError(f"RowPages cannot filter on {lookup!r} when ordered by {self.field!r}")
        self.after = value
        return self

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        offset, stop = window.start or 0, window.stop
        return self.fetch(descending=self.descending, after=self.after, offset=offset, limit=stop - offset)
