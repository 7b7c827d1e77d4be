"""A queryset compiled once per shape and run again with other values (ADR 1120, 2026-12-03
second amendment).

Django builds and compiles a queryset on every request: for a tenant search page that is
about half of the request's CPU (resolving lookups, joins and the RLS-friendly ranges of
numbering/selectors.py), although the SQL only changes with the *shape* of the criteria
(which lookups, how they nest), never with their values. `QueryShapes` keeps the ORM as the
one definition of the query and caches what it compiles to:

- `build(**args)` is an ordinary function returning a queryset of `.values(...)` rows;
- its string and UUID arguments, and the string and UUID values inside a `Q` argument, are
  the query's *values*; everything else (other types, the structure and lookups of a `Q`)
  is its *shape*;
- on the first call of a shape, `build` runs with a unique sentinel in place of each value,
  and the compiled parameters that are exactly a sentinel become slots for that value.
  A sentinel a lookup rewrote (a LIKE pattern wraps its value in %…%) would leave a value
  with no slot: that shape is refused and always built by the ORM, so a template can never
  carry a value the ORM would have transformed;
- later calls of that shape fill the slots and run the stored SQL: the same statement, the
  same plan, the same rows.

The tenant search page and reserve-by-criteria's candidate query use it. The cache is per
process, bounded (LRU) and shared by threads. A shape that fails to compile is answered by the
ORM, which raises what is wrong with the real values.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Q, QuerySet

log = logging.getLogger(__name__)

_SENTINEL_MARK = "\ue000"  # a private-use character: no number, code or tier contains it
_UUID_BASE = 0xE000E000_E000_4000_8000_000000000000


class Unshaped(Exception):
    """An argument holds something the cache cannot take apart into shape and values."""


class BuildError(ValueError):
    """`build` does not return what QueryShapes runs (a programming error: raised, not hidden)."""


@dataclass(frozen=True)
class _Template:
    sql: str
    slots: tuple[tuple[bool, Any], ...]  # (is a value slot, value index or constant)
    columns: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]


class _Sentinels:
    """Hands out sentinels for values and records which value each one stands for."""

    def __init__(self) -> None:
        self.by_sentinel: dict[Any, int] = {}

    def __call__(self, value: Any) -> Any:
        index = len(self.by_sentinel)
        sentinel: Any = (
            uuid.UUID(int=_UUID_BASE + index)
            if isinstance(value, uuid.UUID)
            else f"{_SENTINEL_MARK}{index}{_SENTINEL_MARK}"
        )
        self.by_sentinel[sentinel] = index
        return sentinel


def _is_value(value: Any) -> bool:
    return isinstance(value, (str, uuid.UUID))


def _split(value: Any, values: list[Any]) -> Hashable:
    """The shape of one argument; its values are appended to `values` in a fixed order."""
    if _is_value(value):
        values.append(value)
        return ("value", type(value).__name__)
    if isinstance(value, Q):
        children = []
        for child in value.children:
            if isinstance(child, Q):
                children.append(_split(child, values))
            elif isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], str):
                children.append((child[0], _split(child[1], values)))
            else:
                raise Unshaped(f"a Q child of type {type(child).__name__}")
        return ("Q", value.connector, value.negated, tuple(children))
    if value is None or isinstance(value, (bool, int)):
        return ("const", type(value).__name__, value)
    raise Unshaped(f"an argument of type {type(value).__name__}")


def _rebuild(value: Any, substitute: Callable[[Any], Any]) -> Any:
    """`value` with each of its values replaced by `substitute(value)`, in _split's order."""
    if _is_value(value):
        return substitute(value)
    if isinstance(value, Q):
        rebuilt = Q()
        rebuilt.connector, rebuilt.negated = value.connector, value.negated
        rebuilt.children = [
            _rebuild(child, substitute) if isinstance(child, Q) else (child[0], _rebuild(child[1], substitute))  # type: ignore[index]
            for child in value.children
        ]
        return rebuilt
    return value


class QueryShapes:
    """`rows(**args)`: the rows of `build(**args)`, compiled once per shape of the args."""

    def __init__(self, build: Callable[..., QuerySet[Any]], *, using: str = "default", maxsize: int = 256) -> None:
        self.build = build
        named = getattr(build, "func", build)  # a functools.partial names its function
        self.name = getattr(named, "__qualname__", None) or type(named).__qualname__
        self.using = using
        self.maxsize = maxsize
        self._templates: OrderedDict[Hashable, _Template | None] = OrderedDict()
        self._lock = threading.Lock()

    def rows(self, **args: Any) -> list[dict[str, Any]]:
        values: list[Any] = []
        try:
            shape = tuple((name, _split(args[name], values)) for name in sorted(args))
        except Unshaped:
            return list(self.build(**args))
        template = self._template(shape, args)
        if template is None:  # a shape whose values the ORM transforms: no template
            return list(self.build(**args))
        params = [values[slot] if is_value else slot for is_value, slot in template.slots]
        connection = connections[self.using]
        with connection.cursor() as cursor:
            cursor.execute(template.sql, params)
            fetched = cursor.fetchall()
        out = []
        for row in fetched:
            if template.converters:
                row = list(row)
                for position, functions, expression in template.converters:
                    for convert in functions:
                        row[position] = convert(row[position], expression, connection)
            out.append(dict(zip(template.columns, row, strict=True)))
        return out

    def compiled_shapes(self) -> int:
        return sum(1 for template in self._templates.values() if template is not None)

    def _template(self, shape: Hashable, args: dict[str, Any]) -> _Template | None:
        with self._lock:
            if shape in self._templates:
                self._templates.move_to_end(shape)
                return self._templates[shape]
        try:
            template = self._compile(args)
        except EmptyResultSet:  # the ORM answers such a query with no rows and no SQL
            template = None
        except BuildError:
            raise
        except Exception:  # noqa: BLE001 - the ORM, with the real values, says what is wrong
            log.warning("query shape not compiled (%s); the ORM answers it", self.name, exc_info=True)
            return None  # not remembered: the next call of this shape tries again
        with self._lock:
            self._templates[shape] = template
            while len(self._templates) > self.maxsize:
                self._templates.popitem(last=False)
        return template

    def _compile(self, args: dict[str, Any]) -> _Template | None:
        sentinels = _Sentinels()
        queryset = self.build(**{name: _rebuild(args[name], sentinels) for name in sorted(args)})
        if not queryset._fields:  # type: ignore[attr-defined]
            raise BuildError(f"{self.name}: build must return .values(<fields>) rows")
        compiler = queryset.query.get_compiler(using=self.using)
        sql, params = compiler.as_sql()
        if _SENTINEL_MARK in sql:  # a value written into the statement itself: never reuse it
            log.info("query shape not cached: a value is in the SQL text (%s)", self.name)
            return None
        slots: list[tuple[bool, Any]] = []
        seen: set[int] = set()
        for param in params:
            index = sentinels.by_sentinel.get(param) if isinstance(param, (str, uuid.UUID)) else None
            if index is not None:
                slots.append((True, index))
                seen.add(index)
            elif isinstance(param, str) and _SENTINEL_MARK in param:
                log.info("query shape not cached: a lookup rewrote a value (%s)", self.name)
                return None
            else:
                slots.append((False, param))
        if seen != set(sentinels.by_sentinel.values()):
            log.info("query shape not cached: a value has no parameter (%s)", self.name)
            return None
        columns = tuple(queryset._fields)  # type: ignore[attr-defined]
        if len(columns) != len(compiler.select) or compiler.has_extra_select:  # type: ignore[attr-defined]
            raise BuildError(f"{self.name}: build must return .values(<fields>) rows")
        converters = compiler.get_converters([expression for expression, _, _ in compiler.select])
        return _Template(
            sql=sql,
            slots=tuple(slots),
            columns=columns,
            converters=tuple(
                (position, tuple(functions), expression) for position, (functions, expression) in converters.items()
            ),
        )
