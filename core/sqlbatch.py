"""Several writes in one SQL statement (ADR 1100).

A mutation ends with writes that do not depend on each other's results: the audit event and
its chain head, the outbox row and its NOTIFY, the idempotency record's response. Each home
module (audit, outbox, idempotency) still owns its SQL; it hands it over as a `Fragment`,
and `execute` sends them together as data-modifying CTEs of one statement, so the round
trips (and the per-statement cost in the driver and in PostgreSQL) are paid once.

PostgreSQL runs every data-modifying CTE exactly once, whether or not anything reads it,
all against the same snapshot: fragments must not touch the same row twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connections


@dataclass(frozen=True)
class Fragment:
    """One write. `sql` is an INSERT/UPDATE/DELETE (positional %s parameters); `select` is an
    optional expression for the final SELECT, where `{cte}` names this fragment's CTE (e.g.
    "(SELECT id FROM {cte})") or a side effect such as "pg_notify(%s, %s)"."""

    sql: str
    params: Sequence[Any] = ()
    select: str = ""
    select_params: Sequence[Any] = field(default_factory=tuple)


def compose(fragments: Sequence[Fragment]) -> tuple[str, list[Any]]:
    ctes: list[str] = []
    selects: list[str] = []
    params: list[Any] = []
    select_params: list[Any] = []
    for i, fragment in enumerate(fragments):
        name = f"w{i}"
        ctes.append(f"{name} AS ({fragment.sql})")
        params.extend(fragment.params)
        if fragment.select:
            selects.append(fragment.select.replace("{cte}", name))
            select_params.extend(fragment.select_params)
    sql = f"WITH {', '.join(ctes)} SELECT {', '.join(selects) or '1'}"
    return sql, [*params, *select_params]


def execute(fragments: Sequence[Fragment], using: str = "default") -> tuple[Any, ...]:
    """Run the fragments as one statement; returns the values of their `select`s, in order
    (a fragment without `select` contributes none)."""
    if not fragments:
        return ()
    sql, params = compose(fragments)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return tuple(row or ())
