from __future__ import annotations

from django.apps import AppConfig


class PoolsConfig(AppConfig):
    name = "pools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit.services import register_audited
        from pools.models import Tenant

        register_audited("tenant", [f"tenant_{status.lower()}" for status in Tenant.Status.values])
        # Reference data changed in the admin (ADR 1351).
        register_audited("tenant", ["tenant.create", "tenant.update"])
        register_audited("inventory_pool", ["inventory_pool.create", "inventory_pool.update"])
        register_audited("tenant_pool", ["tenant_pool.create", "tenant_pool.update"])
