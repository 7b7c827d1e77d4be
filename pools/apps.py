from __future__ import annotations

from django.apps import AppConfig


class PoolsConfig(AppConfig):
    name = "pools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit.services import register_audited
        from pools.models import Tenant

        register_audited("tenant", [f"tenant_{status.lower()}" for status in Tenant.Status.values])
