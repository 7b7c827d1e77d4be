from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from contracts.wind_down import contracts_enforce


class Command(BaseCommand):
    help = (
        "Terminated contracts: retire AVAILABLE/QUARANTINED numbers, recall RESERVED/ASSIGNED ones on the end date, "
        "warn holding tenants 30 and 7 days before (numbering.contract.ending.v1), set numbering_contract_days_to_end."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(contracts_enforce().summary())
