"""Contracts that mean something (issue 16): suspension stops new takes, termination winds
the contract's numbers down through the lifecycle, tenants are warned once at 30 and 7 days."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from contracts import services as contract_services
from contracts.models import Contract, ContractEndingNotice, InventoryImport
from contracts.wind_down import CONTRACT_ENDING_EVENT, DAYS_TO_END, contract_warn_tenants, contracts_enforce
from core import errors
from core.actors import Actor
from core.clock import FakeClock
from core.models import OutboxEvent
from core.rls import rls_scope
from numbering import services
from numbering.lease_lookup import read_from_db
from numbering.lifecycle import State
from numbering.models import Lease, Number
from tests.conftest import as_tenant
from tests.factories import BlockFactory, ContractFactory, NumberFactory

OPS = Actor.user("ops.olga", roles=frozenset({"commerce.ops", "numbering.admin"}))
KABUL_NOON = datetime.fromisoformat("2027-03-01T07:30:00+00:00")  # 12:00 in Kabul


def _platform(fn: Any) -> Any:
    with transaction.atomic(), rls_scope(platform=True):
        return fn()


def contract_with_numbers(pool: Any, n: int = 1, **kw: Any) -> tuple[Contract, list[Number]]:
    contract = ContractFactory(**kw)
    block = BlockFactory(issuer=contract.issuer, contract=contract)
    return contract, [NumberFactory(pool=pool, block=block, issuer=contract.issuer) for _ in range(n)]


def state_of(number: Number) -> str:
    return _platform(lambda: Number.objects.get(id=number.id).state)


@pytest.mark.django_db
def test_suspended_contract_refuses_reserve_and_assign_but_its_lease_continues(general_pool: Any, alice: Any) -> None:
    contract, (leased, free, reserved) = contract_with_numbers(general_pool, 3)
    services.number_reserve(number=leased.number, tenant_id=alice.id, actor=OPS)
    services.number_assign(number=leased.number, tenant_id=alice.id, actor=OPS)
    services.number_reserve(number=reserved.number, tenant_id=alice.id, actor=OPS)

    contract_services.contract_suspend(contract_id=contract.id, actor=OPS, reason="MNO dispute")

    with pytest.raises(errors.ContractSuspended):
        services.number_reserve(number=free.number, tenant_id=alice.id, actor=as_tenant(alice))
    with pytest.raises(errors.ContractSuspended):
        services.number_assign(number=free.number, tenant_id=alice.id, actor=OPS)
    with pytest.raises(errors.ContractSuspended):  # a reservation made before is not converted either
        services.number_assign(number=reserved.number, tenant_id=alice.id, actor=as_tenant(alice))
    assert state_of(free) == State.AVAILABLE
    assert state_of(reserved) == State.RESERVED
    # Existing leases continue: ValidateLease's database answer is still the live lease.
    entry = read_from_db(leased.number)
    assert entry is not None and entry.state == State.ASSIGNED and entry.tenant_id == str(alice.id)
    assert _platform(lambda: Lease.objects.get(number=leased, status="ACTIVE").tenant_id) == alice.id
    # And a suspension is a refusal with its own code on REST and gRPC.
    assert errors.ContractSuspended("x").http_status == 409
    assert errors.ContractSuspended("x").grpc_status == "FAILED_PRECONDITION"


@pytest.mark.django_db
def test_numbers_of_a_suspended_contract_are_not_offered_to_tenants(general_pool: Any, alice: Any) -> None:
    from numbering import selectors

    _, (open_number,) = contract_with_numbers(general_pool)
    suspended, (closed_number,) = contract_with_numbers(general_pool)
    contract_services.contract_suspend(contract_id=suspended.id, actor=OPS)
    offered = set(selectors.number_available_for_tenant(tenant_id=alice.id).values_list("number", flat=True))
    assert open_number.number in offered
    assert closed_number.number not in offered


@pytest.mark.django_db
def test_contract_reached_through_its_import_is_guarded_too(general_pool: Any, alice: Any) -> None:
    contract = ContractFactory()
    imp = _platform(
        lambda: InventoryImport.objects.create(
            issuer=contract.issuer, contract=contract, file_sha256="0" * 64, created_by="t"
        )
    )
    block = BlockFactory(issuer=contract.issuer, contract=None, inventory_import=imp)
    number = NumberFactory(pool=general_pool, block=block, issuer=contract.issuer)
    contract_services.contract_suspend(contract_id=contract.id, actor=OPS)
    with pytest.raises(errors.ContractSuspended):
        services.number_reserve(number=number.number, tenant_id=alice.id, actor=OPS)


@pytest.mark.django_db
def test_terminate_retires_available_and_quarantined_at_once_and_keeps_held_until_the_end_date(
    general_pool: Any, alice: Any, bob: Any
) -> None:
    contract, (free, cooling, leased, reserved) = contract_with_numbers(general_pool, 4)
    services.number_reserve(number=cooling.number, tenant_id=alice.id, actor=OPS)
    services.number_assign(number=cooling.number, tenant_id=alice.id, actor=OPS)
    services.number_release(number=cooling.number, actor=OPS)
    services.number_reserve(number=leased.number, tenant_id=alice.id, actor=OPS)
    services.number_assign(number=leased.number, tenant_id=alice.id, actor=OPS)
    services.number_reserve(number=reserved.number, tenant_id=bob.id, actor=OPS)
    assert state_of(cooling) == State.QUARANTINED

    from core import clock

    ends_on = clock.today() + timedelta(days=20)
    response = contract_services.contract_terminate(contract_id=contract.id, actor=OPS, ends_on=ends_on)

    assert response["contract"]["status"] == "TERMINATED" and response["contract"]["ends_on"] == ends_on.isoformat()
    assert [state_of(n) for n in (free, cooling, leased, reserved)] == ["RETIRED", "RETIRED", "ASSIGNED", "RESERVED"]
    events = _platform(lambda: list(OutboxEvent.objects.values_list("event_type", flat=True)))
    assert "numbering.contract.terminated.v1" in events
    assert events.count("numbering.number.retired.v1") == 2
    with pytest.raises(errors.ContractTerminated):  # nothing new is handed out meanwhile
        services.number_assign(number=reserved.number, tenant_id=bob.id, actor=OPS)


@pytest.mark.django_db
def test_terminate_refuses_an_end_date_in_the_past(general_pool: Any) -> None:
    from core import clock

    contract, _ = contract_with_numbers(general_pool)
    with pytest.raises(errors.ValidationError, match="ends_on"):
        contract_services.contract_terminate(
            contract_id=contract.id, actor=OPS, ends_on=clock.today() - timedelta(days=1)
        )
    assert _platform(lambda: Contract.objects.get(id=contract.id).status) == Contract.Status.ACTIVE


@pytest.mark.django_db
def test_end_date_job_recalls_assigned_and_reserved_then_retires_them(
    general_pool: Any, alice: Any, bob: Any, fake_clock: FakeClock
) -> None:
    fake_clock.set(KABUL_NOON)
    contract, (leased, reserved) = contract_with_numbers(general_pool, 2)
    services.number_reserve(number=leased.number, tenant_id=alice.id, actor=OPS)
    services.number_assign(number=leased.number, tenant_id=alice.id, actor=OPS)
    services.number_reserve(number=reserved.number, tenant_id=bob.id, actor=OPS, ttl_seconds=24 * 3600)
    contract_services.contract_terminate(contract_id=contract.id, actor=OPS, ends_on=date(2027, 3, 3))

    contracts_enforce()  # before the end date: nothing recalled
    assert [state_of(n) for n in (leased, reserved)] == ["ASSIGNED", "RESERVED"]

    fake_clock.set(KABUL_NOON + timedelta(days=2))
    result = contracts_enforce()
    assert result.count("recalled") == 2 and result.count("retired") == 2
    assert [state_of(n) for n in (leased, reserved)] == ["RETIRED", "RETIRED"]
    lease = _platform(lambda: Lease.objects.get(number=leased))
    assert (lease.status, lease.end_reason) == ("RECALLED", "CONTRACT_TERMINATED")
    assert read_from_db(leased.number).state == State.RETIRED  # type: ignore[union-attr]
    assert contracts_enforce().counts == {}  # idempotent: a rerun finds nothing to do


@pytest.mark.django_db
def test_tenants_are_warned_once_30_and_once_7_days_before(
    general_pool: Any, alice: Any, bob: Any, charlie: Any, fake_clock: FakeClock
) -> None:
    fake_clock.set(KABUL_NOON)
    contract, (a1, a2, b1, _free) = contract_with_numbers(general_pool, 4)
    for number, tenant in ((a1, alice), (a2, alice), (b1, bob)):
        services.number_reserve(number=number.number, tenant_id=tenant.id, actor=OPS)
        services.number_assign(number=number.number, tenant_id=tenant.id, actor=OPS)
    contract_services.contract_terminate(contract_id=contract.id, actor=OPS, ends_on=date(2027, 4, 10))

    def warnings() -> list[tuple[str, int]]:
        rows = _platform(lambda: list(OutboxEvent.objects.filter(event_type=CONTRACT_ENDING_EVENT).order_by("id")))
        return [(r.envelope["tenant_id"], r.envelope["data"]["days_before"]) for r in rows]

    for day, expected in (
        (date(2027, 3, 10), []),  # 31 days before: too early
        (date(2027, 3, 11), [30]),  # 30 days before
        (date(2027, 3, 12), [30]),  # again: not again
        (date(2027, 4, 3), [30, 7]),  # 7 days before
        (date(2027, 4, 9), [30, 7]),
    ):
        fake_clock.set(datetime(day.year, day.month, day.day, 7, 30, tzinfo=KABUL_NOON.tzinfo))
        contracts_enforce()
        contracts_enforce()
        sent = warnings()
        for tenant in (alice, bob):
            assert [d for t, d in sent if t == str(tenant.id)] == expected, day
        assert all(t != str(charlie.id) for t, _ in sent)  # holds nothing of the contract
    alice_7 = next(
        r.envelope
        for r in _platform(lambda: list(OutboxEvent.objects.filter(event_type=CONTRACT_ENDING_EVENT)))
        if r.envelope["tenant_id"] == str(alice.id) and r.envelope["data"]["days_before"] == 7
    )
    assert alice_7["data"]["numbers"] == 2 and alice_7["data"]["ends_on"] == "2027-04-10"


@pytest.mark.django_db
def test_a_tenant_first_warned_inside_7_days_gets_the_7_day_warning_only(
    general_pool: Any, alice: Any, fake_clock: FakeClock
) -> None:
    fake_clock.set(KABUL_NOON)
    contract, (n,) = contract_with_numbers(general_pool)
    services.number_reserve(number=n.number, tenant_id=alice.id, actor=OPS)
    services.number_assign(number=n.number, tenant_id=alice.id, actor=OPS)
    contract_services.contract_terminate(contract_id=contract.id, actor=OPS, ends_on=date(2027, 3, 6))
    contract = _platform(lambda: Contract.objects.select_related("issuer").get(id=contract.id))
    assert contract_warn_tenants(contract=contract) == 1
    assert contract_warn_tenants(contract=contract) == 0
    assert sorted(_platform(lambda: list(ContractEndingNotice.objects.values_list("days_before", flat=True)))) == [
        7,
        30,
    ]


@pytest.mark.django_db
def test_days_to_end_gauge_per_contract(general_pool: Any, fake_clock: FakeClock) -> None:
    fake_clock.set(KABUL_NOON)
    ending, _ = contract_with_numbers(general_pool, reference="MOU-ENDING")
    _platform(lambda: Contract.objects.filter(id=ending.id).update(ends_on=date(2027, 3, 21)))
    contract_with_numbers(general_pool, reference="MOU-OPEN-ENDED")
    contracts_enforce()
    sample = DAYS_TO_END.labels("MOU-ENDING", ending.issuer.code, "ACTIVE")._value.get()
    assert sample == 20
    assert ("MOU-OPEN-ENDED",) not in {k[:1] for k in DAYS_TO_END._metrics}


# --- a reserve racing a suspension: real threads, real commits -----------------------------------


@pytest.mark.usefixtures("committed")
def test_reserve_racing_a_suspension_is_refused_or_reserved_before_it_never_after(general_pool: Any) -> None:
    from tests.conftest import _tenant

    alice = _tenant("alice", general_pool)
    contract, (number,) = contract_with_numbers(general_pool)
    suspending = threading.Event()
    committed_at: list[float] = []

    def suspend_and_hold() -> None:
        # The suspension takes the contract row, then holds its transaction open a moment so a
        # reserve arrives while it is in flight.
        try:
            with transaction.atomic():
                Contract.objects.select_for_update().get(id=contract.id)
                Contract.objects.filter(id=contract.id).update(status=Contract.Status.SUSPENDED)
                suspending.set()
                time.sleep(0.5)
            committed_at.append(time.monotonic())
        finally:
            connection.close()

    outcome: list[Any] = []

    def reserve() -> None:
        try:
            suspending.wait(10)
            outcome.append(services.number_reserve(number=number.number, tenant_id=alice.id, actor=OPS))
        except Exception as exc:  # noqa: BLE001 - the refusal is the outcome
            outcome.append(exc)
        finally:
            outcome.append(time.monotonic())
            connection.close()

    threads = [threading.Thread(target=suspend_and_hold), threading.Thread(target=reserve)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    result, finished_at = outcome
    # The reserve waited for the suspension (the guard's share lock) and then saw it.
    assert finished_at >= committed_at[0]
    assert isinstance(result, errors.ContractSuspended), result
    assert state_of(number) == State.AVAILABLE


@pytest.mark.usefixtures("committed")
def test_a_reservation_committed_before_the_suspension_is_preserved(general_pool: Any) -> None:
    from tests.conftest import _tenant

    alice = _tenant("alice", general_pool)
    contract, (number,) = contract_with_numbers(general_pool)
    reserving = threading.Event()
    suspended: list[Any] = []

    def suspend() -> None:
        try:
            reserving.wait(10)
            suspended.append(contract_services.contract_suspend(contract_id=contract.id, actor=OPS))
            suspended.append(time.monotonic())
        finally:
            connection.close()

    thread = threading.Thread(target=suspend)
    thread.start()
    with transaction.atomic():  # the reserve's transaction holds its share lock until commit
        services.number_reserve(number=number.number, tenant_id=alice.id, actor=OPS)
        reserving.set()
        time.sleep(0.5)
        assert not suspended  # the suspension waits for the reserve in flight
        # Taken before the COMMIT is sent: the suspension, blocked until that commit, ends
        # after this. (Taken after the block, it raced the suspension thread by microseconds.)
        committing = time.monotonic()
    thread.join(30)
    assert suspended and suspended[1] >= committing
    assert state_of(number) == State.RESERVED  # reserved-then-preserved
    connection.close()
