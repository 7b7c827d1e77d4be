"""Contracts that mean something (issue 16; ADRs 1610, 1611, 1612).

A TERMINATED contract has an end date (`ends_on`). Its AVAILABLE and QUARANTINED numbers
are retired at once; its RESERVED and ASSIGNED numbers are recalled when the end date
arrives (and then retired); the tenants holding them are warned 30 and 7 days before by
`numbering.contract.ending.v1`, once each. Every number changes through its lifecycle
service (numbering.services → the CAS), one number per transaction, in batches: a crash
leaves whole numbers done and a rerun carries on with what is left, so the work is
resumable and idempotent. The CONTRACT_OPEN guard of the lifecycle table refuses new
reservations and assignments meanwhile, so nothing new arrives behind the wind-down.

Reached three ways: contract_terminate runs the first batches at once, the hourly beat
task and `manage.py enforce_contracts` run `contracts_enforce`, tests call these directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from prometheus_client import Gauge

from contracts.models import Contract
from contracts.selectors import contract_numbers
from core import clock, errors
from core.actors import Actor
from core.locks import job_lock
from core.logging import mask_number
from core.outbox import outbox_enqueue
from core.rls import rls_scope
from numbering import services
from numbering.jobs import JOB_SKIPPED, JobResult, platform_read
from numbering.lifecycle import HELD_STATES, State

log = logging.getLogger(__name__)

CONTRACT_ENDING_EVENT = "numbering.contract.ending.v1"
# Days before ends_on at which each holding tenant is warned (largest first).
WARN_DAYS = (30, 7)
# The reason on the recalled leases, the retired numbers and their events.
REASON = "CONTRACT_TERMINATED"
ACTOR = Actor.system("contract-wind-down")
MAX_BATCHES = 100  # per contract per run; the next run carries on

DAYS_TO_END = Gauge(
    "numbering_contract_days_to_end",
    "Days until a contract's ends_on (contracts ending today or later, and ended contracts still holding numbers)",
    ["contract", "issuer", "status"],
)
HELD_NUMBERS = Gauge(
    "numbering_contract_held_numbers",
    "RESERVED/ASSIGNED numbers of a contract that has an end date (recalled when it arrives)",
    ["contract", "issuer", "status"],
)


def _batch_size() -> int:
    return int(settings.EVENT_RECALL_BATCH)


def _each_number(
    *,
    contract_id: int,
    states: list[State],
    act: Callable[[str], object],
    result: JobResult,
    done: str,
    max_batches: int,
) -> None:
    """Act on the contract's numbers in `states`, a batch at a time, each number in its own
    transaction (through its service). A number that is refused is counted and skipped for
    the rest of this run; it is retried by the next one."""
    size = _batch_size()
    failed: set[str] = set()
    for _ in range(max_batches):
        numbers = [
            n
            for n in platform_read(
                lambda: list(
                    contract_numbers(contract_id)
                    .filter(state__in=states)
                    .exclude(number__in=failed)
                    .order_by("id")
                    .values_list("number", flat=True)[:size]
                )
            )
        ]
        if not numbers:
            return
        for number in numbers:
            try:
                act(number)
            except errors.DomainError as exc:
                failed.add(number)
                result.add(exc.code.lower())
                log.info("contract wind-down: %s not changed: %s", mask_number(number), exc.code)
            else:
                result.add(done)


def contract_wind_down(
    *,
    contract_id: int,
    actor: Actor = ACTOR,
    max_batches: int = MAX_BATCHES,
    today: date | None = None,
    result: JobResult | None = None,
) -> JobResult:
    """Carry a TERMINATED contract's numbers as far as its end date allows: recall the held
    ones once ends_on has come (lease ended RECALLED, the standard cool-off of the number's
    kind — not the compliance one: the tenant did nothing wrong), then retire every AVAILABLE
    and QUARANTINED one. A contract in any other status is left alone."""
    result = result or JobResult("contract_wind_down")
    contract = platform_read(lambda: Contract.objects.filter(id=contract_id).first())
    if contract is None or contract.status != Contract.Status.TERMINATED:
        return result
    today = today or clock.today()
    if contract.ends_on is None or contract.ends_on <= today:
        _each_number(
            contract_id=contract_id,
            states=list(HELD_STATES),
            act=lambda n: services.number_recall(number=n, actor=actor, reason=REASON),
            result=result,
            done="recalled",
            max_batches=max_batches,
        )
    _each_number(
        contract_id=contract_id,
        states=[State.AVAILABLE, State.QUARANTINED],
        act=lambda n: services.number_retire(number=n, actor=actor, reason=REASON),
        result=result,
        done="retired",
        max_batches=max_batches,
    )
    return result


def _insert_notice(*, contract: Contract, tenant_id: Any, days_before: int, numbers: int) -> bool:
    """Record the warning; False when it was recorded before (by this run or another)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO contracts_contractendingnotice"
            " (contract_id, tenant_id, days_before, ends_on, numbers, sent_at) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT ON CONSTRAINT contract_ending_notice_once DO NOTHING RETURNING id",
            [contract.id, tenant_id, days_before, contract.ends_on, numbers, clock.now()],
        )
        return cursor.fetchone() is not None


def contract_warn_tenants(*, contract: Contract, today: date | None = None) -> int:
    """Warn each tenant holding numbers of a terminated contract, 30 and 7 days before its
    end date, exactly once per (tenant, threshold, end date): the notice row and the outbox
    event are one transaction, and the unique notice row decides who sends. A tenant first
    warned inside 7 days gets the 7-day warning only (the 30-day one is recorded as
    superseded). Returns how many warnings were sent."""
    today = today or clock.today()
    if contract.status != Contract.Status.TERMINATED or contract.ends_on is None:
        return 0
    days_left = (contract.ends_on - today).days
    due = [d for d in WARN_DAYS if days_left <= d]
    if days_left < 1 or not due:
        return 0
    threshold = min(due)
    sent = 0
    with transaction.atomic(), rls_scope(platform=True):
        holders = list(
            contract_numbers(contract.id)
            .filter(state__in=list(HELD_STATES))
            .values("tenant_id", "state")
            .annotate(n=Count("id"))
            .order_by("tenant_id")
        )
        per_tenant: dict[Any, dict[str, int]] = {}
        for row in holders:
            per_tenant.setdefault(row["tenant_id"], {})[row["state"]] = row["n"]
        for tenant_id, counts in per_tenant.items():
            total = sum(counts.values())
            inserted = {
                d: _insert_notice(contract=contract, tenant_id=tenant_id, days_before=d, numbers=total) for d in due
            }
            if not inserted[threshold]:
                continue
            outbox_enqueue(
                event_type=CONTRACT_ENDING_EVENT,
                aggregate_id=f"contract:{contract.reference}",
                tenant_id=tenant_id,
                data={
                    "contract": contract.reference,
                    "operator_code": contract.issuer.code,
                    "ends_on": contract.ends_on.isoformat(),
                    "days_before": threshold,
                    "days_left": days_left,
                    "numbers": total,
                    "reserved": counts.get(State.RESERVED, 0),
                    "assigned": counts.get(State.ASSIGNED, 0),
                    "reason": REASON,
                },
            )
            sent += 1
    if sent:
        log.info(
            "contract %s: %d tenants warned (%d days before %s)", contract.reference, sent, threshold, contract.ends_on
        )
    return sent


def _set_gauges(today: date) -> None:
    rows = platform_read(
        lambda: [
            (c, contract_numbers(c.id).filter(state__in=list(HELD_STATES)).count())
            for c in Contract.objects.select_related("issuer")
            .filter(ends_on__isnull=False)
            .exclude(status=Contract.Status.DRAFT)
            .order_by("id")
        ]
    )
    DAYS_TO_END.clear()
    HELD_NUMBERS.clear()
    for contract, held in rows:
        assert contract.ends_on is not None
        days = (contract.ends_on - today).days
        if days < 0 and held == 0:
            continue  # ended and wound down: no series (an alert on it would never clear)
        labels = (contract.reference, contract.issuer.code, contract.status)
        DAYS_TO_END.labels(*labels).set(days)
        HELD_NUMBERS.labels(*labels).set(held)


def contracts_enforce(*, today: date | None = None) -> JobResult:
    """The hourly job: wind every terminated contract down as far as its end date allows,
    warn the tenants of those ending within 30 days, and export days-to-end per contract
    (NumberingContractEnding). Safe to run twice at once (job lock; and each step is
    idempotent without it)."""

    def body(result: JobResult) -> JobResult:
        day = today or clock.today()
        terminated = platform_read(
            lambda: list(
                Contract.objects.select_related("issuer").filter(status=Contract.Status.TERMINATED).order_by("id")
            )
        )
        for contract in terminated:
            contract_wind_down(contract_id=contract.id, today=day, result=result)
            warned = contract_warn_tenants(contract=contract, today=day)
            if warned:
                result.add("warned", warned)
        _set_gauges(day)
        result.extra["terminated_contracts"] = len(terminated)
        return result

    result = JobResult("contracts_enforce")
    with job_lock("contracts_enforce") as acquired:
        if not acquired:
            JOB_SKIPPED.labels("contracts_enforce").inc()
            result.skipped = True
            return result
        body(result)
    log.info("%s", result.summary())
    return result
