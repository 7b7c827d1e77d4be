"""billing-service's pact with numbering-service (written as its team would).

Billing charges for leases from numbering's events on JetStream. From the CloudEvents-style
envelope it needs `id` (de-duplication), `type`, `source`, `time`, `subject` and
`tenant_id` (whom to bill); from `data` the number, the lease id and the term, and for
vanity short codes the tier and the price recorded at assign (`price`: monthly price and
setup fee as decimal strings in AFN, ADR 1650), which billing charges as it is.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pact import match

from tests.pacts.consumers.support import RFC3339, new_pact, timestamp_like, uuid_like, write

AMOUNT = r"^\d{1,10}\.\d{2}$"  # decimal string, two places: never a float

CONSUMER = "billing-service"
TENANT = "3e5a7c9e-1f2a-4b4c-8d6e-8f0a2b4c6d8e"
ASSIGNED_MSISDN, ASSIGNED_VANITY, RENEWED, EXPIRED, RELEASED, RECALLED = (
    "+93790050001",
    "8888",
    "+93790050003",
    "+93790050004",
    "+93790050005",
    "+93790050006",
)
RESERVED_STATE = "a number reserved by the tenant"
ASSIGNED_STATE = "a number assigned to the tenant"


def envelope(event_type: str, number: str, data: dict[str, Any]) -> dict[str, Any]:
    example_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event_type}/{number}"))  # distinct per event
    return {
        "id": uuid_like(example_id),
        "type": event_type,
        "source": "numbering-service",
        "time": match.regex("2027-01-01T00:00:00.000000+00:00", regex=RFC3339),
        "subject": number,
        "tenant_id": TENANT,
        "data": {"number": number, **data},
    }


@dataclass
class Ledger:
    """Billing's event handler: one ledger line per billable lease event, once per event id."""

    lines: list[tuple[str, str, str, str]] = field(default_factory=list)
    charges: list[tuple[str, Decimal, Decimal, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def on_event(self, body: str | bytes | None, metadata: dict[str, object]) -> None:
        event = json.loads(body or b"{}")
        assert event["source"] == "numbering-service"
        if event["id"] in self.seen:
            return
        self.seen.add(event["id"])
        data = event["data"]
        kind = {
            "numbering.number.assigned.v1": "START",
            "numbering.lease.renewed.v1": "RENEW",
            "numbering.lease.expired.v1": "STOP",
            "numbering.number.released.v1": "STOP",
            "numbering.number.recalled.v1": "STOP",
        }[event["type"]]
        if kind != "STOP":
            assert int(data["term_days"]) > 0 and data["expires_at"]
        tier = data.get("vanity_tier") or "STANDARD"
        self.lines.append((kind, event["tenant_id"], data["lease_id"], tier))
        price = data.get("price")
        if kind == "START" and price:
            self.charges.append(
                (price["tier"], Decimal(price["monthly_price"]), Decimal(price["setup_fee"]), price["currency"])
            )


def test_billing_service_contract() -> None:
    pact = new_pact(CONSUMER)
    term = {
        "lease_id": uuid_like(),
        "expires_at": timestamp_like("2027-01-31T00:00:00+00:00"),
        "term_days": match.int(30),
    }
    events = [
        (
            "numbering.number.assigned.v1 for a long number",
            (RESERVED_STATE, {"number": ASSIGNED_MSISDN, "tenant_id": TENANT}),
            envelope("numbering.number.assigned.v1", ASSIGNED_MSISDN, {"kind": "MSISDN", **term}),
        ),
        (
            "numbering.number.assigned.v1 for a vanity short code",
            (RESERVED_STATE, {"number": ASSIGNED_VANITY, "tenant_id": TENANT, "vanity_tier": "PLATINUM"}),
            envelope(
                "numbering.number.assigned.v1",
                ASSIGNED_VANITY,
                {
                    "kind": "SHORT_CODE",
                    "vanity_tier": "PLATINUM",
                    "price": {
                        "tier": "PLATINUM",
                        "monthly_price": match.regex("25000.00", regex=AMOUNT),
                        "setup_fee": match.regex("50000.00", regex=AMOUNT),
                        "currency": "AFN",
                    },
                    **term,
                },
            ),
        ),
        (
            "numbering.lease.renewed.v1",
            (ASSIGNED_STATE, {"number": RENEWED, "tenant_id": TENANT}),
            envelope("numbering.lease.renewed.v1", RENEWED, term),
        ),
        (
            "numbering.lease.expired.v1",
            ("a number assigned to the tenant whose lease has run out", {"number": EXPIRED, "tenant_id": TENANT}),
            envelope("numbering.lease.expired.v1", EXPIRED, {"lease_id": uuid_like()}),
        ),
        (
            "numbering.number.released.v1 of an assigned number",
            (ASSIGNED_STATE, {"number": RELEASED, "tenant_id": TENANT}),
            envelope("numbering.number.released.v1", RELEASED, {"lease_id": uuid_like()}),
        ),
        (
            "numbering.number.recalled.v1 of an assigned number",
            (ASSIGNED_STATE, {"number": RECALLED, "tenant_id": TENANT}),
            envelope("numbering.number.recalled.v1", RECALLED, {"lease_id": uuid_like()}),
        ),
    ]
    for description, (state, params), body in events:
        pact.upon_receiving(description, "Async").given(state, params).with_body(body, "application/json")

    ledger = Ledger()
    pact.verify(ledger.on_event, "Async")
    assert [(kind, tier) for kind, _, _, tier in ledger.lines] == [
        ("START", "STANDARD"),
        ("START", "PLATINUM"),
        ("RENEW", "STANDARD"),
        ("STOP", "STANDARD"),
        ("STOP", "STANDARD"),
        ("STOP", "STANDARD"),
    ]
    assert {tenant for _, tenant, _, _ in ledger.lines} == {TENANT}
    assert ledger.charges == [("PLATINUM", Decimal("25000.00"), Decimal("50000.00"), "AFN")]
    write(pact)
