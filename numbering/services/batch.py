"""Reserve-by-criteria: n numbers matching a search, all of them or none (ADR 0402)."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from core import errors, idempotency, rls
from core.actors import Actor
from numbering.services.actions import number_reserve
from numbering.services.rules import active_pool
from numbering.services.skeleton import acting_tenant

MAX_RESERVE_BATCH = 100
RESERVE_BATCH_ATTEMPTS = 5


class _ShortBatch(Exception):
    def __init__(self, got: int) -> None:
        self.got = got


def _reserve_batch(
    actor: Actor,
    tenant_id: uuid.UUID,
    criteria: Any,
    count: int,
    ttl_seconds: int | None,
    chain_for: Callable[[str], int],
) -> list[dict[str, Any]]:
    from numbering import selectors

    results: list[dict[str, Any]] = []
    tried: set[int] = set()
    while len(results) < count:
        candidates = selectors.available_candidates_for_update(
            tenant_id=tenant_id, criteria=criteria, limit=count - len(results), exclude_ids=tried
        )
        if not candidates:
            raise _ShortBatch(len(results))
        for candidate in sorted(candidates, key=lambda n: (chain_for(n["number"]), n["number"])):
            tried.add(candidate["id"])
            try:
                result = number_reserve(
                    number=candidate["number"], tenant_id=tenant_id, actor=actor, ttl_seconds=ttl_seconds
                )
            except _LOST_CANDIDATE:
                continue
            results.append(result.to_dict())
    return results


# Refusals after which reserve-by-criteria keeps looking for another candidate.
_LOST_CANDIDATE = (
    errors.NotAvailable,
    errors.Conflict,
    errors.InvalidTransition,
    errors.ContractSuspended,  # a suspension committed after the candidate was picked
    errors.ContractTerminated,
)


@dataclass
class BatchResult:
    results: list[dict[str, Any]]
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"count": len(self.results), "results": self.results}


def number_reserve_matching(
    *,
    actor: Actor,
    count: int,
    tenant_id: uuid.UUID | str | None = None,
    kind: str | None = None,
    issuer: str | None = None,
    prefix: str | None = None,
    pattern: str | None = None,
    vanity_tier: str | None = None,
    vanity: bool | None = None,
    ttl_seconds: int | None = None,
    idempotency_key: str | None = None,
) -> BatchResult:
    """Reserve `count` AVAILABLE numbers matching the criteria in the tenant's entitled
    pools — all of them or none (NOT_AVAILABLE when fewer could be had).

    Lock order, the same as a single number_reserve (ADR 0402): the tenant pool row first,
    then the candidate number rows (FOR UPDATE SKIP LOCKED: rows another reserver holds
    are skipped, so a busy pool does not look empty), then the audit chain heads, taken
    in ascending chain order by reserving the candidates sorted by their chain."""
    from audit.services import chain_for
    from numbering import selectors

    if not isinstance(count, int) or not 1 <= count <= MAX_RESERVE_BATCH:
        raise errors.ValidationError(f"count: must be between 1 and {MAX_RESERVE_BATCH}", field="count")
    if ttl_seconds is not None and ttl_seconds < 0:
        raise errors.ValidationError("ttl_seconds: must not be negative", field="ttl_seconds")
    criteria = selectors.number_criteria_q(
        kind=kind, issuer=issuer, prefix=prefix, pattern=pattern, vanity_tier=vanity_tier, vanity=vanity
    )
    acting = acting_tenant(actor, tenant_id)
    if acting is None:
        raise errors.ValidationError("tenant_id: required to reserve numbers", field="tenant_id")
    fingerprint = {
        "action": "reserve_matching",
        "tenant_id": str(acting),
        "count": count,
        "kind": kind,
        "issuer": issuer,
        "prefix": prefix,
        "pattern": pattern,
        "vanity_tier": vanity_tier,
        "vanity": vanity,
        "ttl_seconds": ttl_seconds,
    }

    def reserve_all() -> dict[str, Any]:
        active_pool(acting, lock=True)
        for attempt in range(RESERVE_BATCH_ATTEMPTS):
            try:
                # A savepoint per attempt: a short attempt rolls back and so releases every
                # row lock it took, letting a competing batch finish instead of both failing.
                with transaction.atomic():
                    results = _reserve_batch(actor, acting, criteria, count, ttl_seconds, chain_for)
                break
            except _ShortBatch as short:
                matching = selectors.number_available_for_tenant(tenant_id=acting).filter(criteria).count()
                if matching < count or attempt == RESERVE_BATCH_ATTEMPTS - 1:
                    raise errors.NotAvailable(
                        f"count: only {short.got} of {count} matching numbers could be reserved; nothing was reserved",
                        field="count",
                    ) from None
                # Enough rows match but others hold them right now: back off (jittered, so two
                # batches that split the last rows between them do not collide again) and retry.
                time.sleep(random.uniform(0.005, 0.03) * (attempt + 1))  # noqa: S311 - jitter, not crypto
        results.sort(key=lambda r: r["number"]["number"])
        return {"count": len(results), "results": results}

    with transaction.atomic(), rls.scope_for(actor):
        outcome = idempotency.run(scope=actor.identity, key=idempotency_key, request=fingerprint, produce=reserve_all)
    return BatchResult(outcome.response["results"], replayed=outcome.replayed)
