"""Celery tasks of the pools app: thin adapters over pools.services."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from pools.services import pool_watermarks_check


@shared_task(name="pools.tasks.pool_watermarks")
def pool_watermarks() -> dict[str, Any]:
    result = pool_watermarks_check()
    return {"pools": result.pools, "crossings": len(result.crossings)}
