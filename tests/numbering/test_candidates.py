"""Reserve-by-criteria's locking candidate query (selectors.available_candidates_for_update):
compiled once per shape like the search page (ADR 1120), with the ORM's answer on every
round, the first one and the rounds after lost candidates."""

from __future__ import annotations

from typing import Any

import pytest

from numbering import selectors
from tests.factories import InventoryPoolFactory, NumberFactory

pytestmark = pytest.mark.django_db


def test_candidates_come_in_number_order_and_later_rounds_skip_what_was_tried(alice: Any, general_pool: Any) -> None:
    made = sorted(NumberFactory(pool=general_pool).number for _ in range(5))
    NumberFactory(pool=InventoryPoolFactory(code="NOT_ALICES"))  # outside her entitlement
    criteria = selectors.prefix_q("+9379")
    first = selectors.available_candidates_for_update(tenant_id=alice.id, criteria=criteria, limit=2)
    assert [c["number"] for c in first] == made[:2]
    again = selectors.available_candidates_for_update(
        tenant_id=alice.id, criteria=criteria, limit=10, exclude_ids=[c["id"] for c in first]
    )
    assert [c["number"] for c in again] == made[2:]


def test_one_shape_compiles_once_whatever_its_values(alice: Any, general_pool: Any) -> None:
    made = sorted(NumberFactory(pool=general_pool).number for _ in range(3))
    before = selectors._CANDIDATES.compiled_shapes()
    for prefix in ("+93790", "+9379", made[1]):
        found = selectors.available_candidates_for_update(
            tenant_id=alice.id, criteria=selectors.prefix_q(prefix), limit=3
        )
        assert [c["number"] for c in found] == [n for n in made if n.startswith(prefix)]
    assert selectors._CANDIDATES.compiled_shapes() <= before + 1
