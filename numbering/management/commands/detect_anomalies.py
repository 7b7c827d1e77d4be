from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from numbering.anomaly import anomaly_detect


class Command(BaseCommand):
    help = "Anomaly detector: WRONG_TENANT bursts, CONFLICT spikes, reserve/release churn → fraud signals."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(anomaly_detect().summary())
