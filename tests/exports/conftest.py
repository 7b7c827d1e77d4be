"""A seeded month for export tests: numbers in every state, text that looks like formulas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from core.periods import period_of
from numbering.lifecycle import State
from tests.factories import (
    BlockFactory,
    ContractFactory,
    IssuerFactory,
    ShortCodeFactory,
    TenantFactory,
    TenantPoolFactory,
)
from tests.numbering.helpers import number_in

EVIL_NAME = "=cmd|' /C calc'!A0"
EVIL_REG = "@REG-EVIL"


@dataclass
class Seeded:
    period: str
    now: datetime  # a moment after the period ended
    numbers: list[Any]
    alice: Any
    evil: Any


def this_month_and_after() -> tuple[str, datetime]:
    month = period_of(timezone.now())
    return month.name, month.end + timedelta(hours=1)


@pytest.fixture
def seeded_month(alice: Any, bob: Any, general_pool: Any) -> Seeded:
    evil = TenantFactory(name=EVIL_NAME, registration_no=EVIL_REG)
    TenantPoolFactory(tenant=evil, inventory_pools=[general_pool])
    roshan = IssuerFactory()
    contract = ContractFactory(issuer=roshan, reference="-MOU-EVIL")
    block = BlockFactory(issuer=roshan, contract=contract, name="+block-a")
    other = BlockFactory(issuer=roshan, name="block-b")
    kw = {"issuer": roshan, "pool": general_pool}
    numbers = [
        number_in(State.ASSIGNED, alice, block=block, **kw),
        number_in(State.ASSIGNED, evil, block=block, **kw),
        number_in(State.RESERVED, bob, block=block, **kw),
        number_in(State.QUARANTINED, alice, block=other, **kw),
        number_in(State.RETIRED, None, block=other, **kw),
        number_in(State.AVAILABLE, None, block=other, **kw),
        number_in(State.AVAILABLE, None, **kw),
        ShortCodeFactory(vanity=True, vanity_tier="\rGOLD"),
    ]
    period, after = this_month_and_after()
    return Seeded(period, after, numbers, alice, evil)
