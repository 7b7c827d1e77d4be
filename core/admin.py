"""Helpers shared by the apps' admin modules: big tables never run a full COUNT."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator

from core.models import IdempotencyRecord

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """COUNT over at most COUNT_CAP + 1 rows: a changelist of millions of numbers pages
    as fast as one of hundreds ("10,000+" rather than an exact total)."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()  # type: ignore[attr-defined]


class BigTableAdmin(admin.ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50


class ReadOnlyAdmin(BigTableAdmin):
    """Machine-written or append-only rows: view only, even for superusers."""

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


def fixed_values_filter(
    field_name: str, values: Iterable[str] | Callable[[], Iterable[str]], title: str | None = None
) -> type[admin.SimpleListFilter]:
    """A list filter over known values. Django's default for a plain CharField runs
    SELECT DISTINCT over the whole table on every changelist load — not on big tables.
    `values` may be a callable, read when the page is drawn (a registry filled at start)."""

    class _Filter(admin.SimpleListFilter):
        parameter_name = field_name

        def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
            return [(v, v) for v in (values() if callable(values) else values)]

        def queryset(self, request: Any, queryset: Any) -> Any:
            return queryset.filter(**{field_name: self.value()}) if self.value() else queryset

    _Filter.title = title or field_name.replace("_", " ")
    _Filter.__name__ = f"{field_name.title().replace('_', '')}Filter"
    return _Filter


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("scope", "key", "created_at", "expires_at")
    search_fields = ("key",)
