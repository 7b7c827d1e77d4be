"""Helpers shared by the apps' admin modules: big tables never run a full COUNT."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator

from core import authz
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


class MatrixPermissions:
    """Admin permissions from core.authz, the table REST uses (issue 13 item 3, ADR 1351):
    view needs `matrix_read` (or `matrix_write`), add and change need `matrix_write`, and
    nothing is ever deleted (reference data is deactivated: a status, a revocation).
    With `save_service` set, the change form writes through that service — `service(obj,
    actor=..., save=...)`, audited — never through Model.save directly."""

    matrix_read: str | None = None
    matrix_write: str | None = None
    save_service: Callable[..., Any] | None = None
    # "Deactivate selected" (issue 16, ADR 1620): `deactivate_service(row, actor=)` through the
    # same audited service as POST …/deactivate/, offered to the roles of `matrix_deactivate`.
    matrix_deactivate: str | None = None
    deactivate_service: Callable[..., Any] | None = None

    def _roles(self, request: Any) -> frozenset[str]:
        user = request.user
        if not (user.is_active and user.is_staff):
            return frozenset()
        return authz.roles_of(user)

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        roles = self._roles(request)
        return any(key and authz.allowed(key, roles) for key in (self.matrix_read, self.matrix_write))

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        if obj is not None and is_deactivated(obj):
            return False  # kept as it was: the change form shows it read-only
        return bool(self.matrix_write) and authz.allowed(self.matrix_write or "", self._roles(request))

    def has_add_permission(self, request: Any, *args: Any) -> bool:
        return self.has_change_permission(request)

    def get_actions(self, request: Any) -> Any:
        actions = super().get_actions(request)  # type: ignore[misc]
        key = self.matrix_deactivate
        if self.deactivate_service is not None and key and authz.allowed(key, self._roles(request)):
            actions["deactivate_selected"] = (
                _deactivate_selected,
                "deactivate_selected",
                "Deactivate selected (audited; nothing is deleted)",
            )
        return actions

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_module_permission(self, request: Any) -> bool:
        return self.has_view_permission(request)

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        if self.save_service is None:
            super().save_model(request, obj, form, change)  # type: ignore[misc,attr-defined]
        # else: written with its relations, audited, in save_related

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        parent = super()
        if self.save_service is None:
            parent.save_related(request, form, formsets, change)  # type: ignore[misc,attr-defined]
            return

        def save() -> None:
            form.instance.save()
            parent.save_related(request, form, formsets, change)  # type: ignore[misc,attr-defined]

        type(self).save_service(form.instance, actor=authz.staff_actor(request.user), save=save)  # type: ignore[misc,attr-defined]


def is_deactivated(obj: Any) -> bool:
    return getattr(obj, "deactivated_at", None) is not None or getattr(obj, "status", None) == "DELETED"


def _deactivate_selected(modeladmin: Any, request: Any, queryset: Any) -> None:
    from django.contrib import messages

    from core.errors import DomainError

    actor, done = authz.staff_actor(request.user), 0
    for row in queryset:
        try:
            type(modeladmin).deactivate_service(row, actor=actor)
        except DomainError as exc:
            messages.error(request, f"{row}: {exc.message}")
        else:
            done += 1
    if done:
        messages.success(request, f"{done} deactivated (audited; kept, not deleted).")


class MatrixAdmin(MatrixPermissions, admin.ModelAdmin):
    pass


class ReadOnlyAdmin(BigTableAdmin):
    """Machine-written or append-only rows: view only, even for superusers. With
    `matrix_read` set, viewing needs that core.authz key (ADR 1351)."""

    matrix_read: str | None = None

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        if self.matrix_read is None:
            return super().has_view_permission(request, obj)
        user = request.user
        return bool(user.is_active and user.is_staff) and authz.allowed(self.matrix_read, authz.roles_of(user))

    def has_module_permission(self, request: Any) -> bool:
        return self.has_view_permission(request) if self.matrix_read else super().has_module_permission(request)

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
    matrix_read = "admin.idempotency.read"
    list_display = ("scope", "key", "created_at", "expires_at")
    search_fields = ("key",)
