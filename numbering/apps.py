from __future__ import annotations

from django.apps import AppConfig


class NumberingConfig(AppConfig):
    name = "numbering"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit.services import register_audited
        from numbering.lifecycle import Action

        register_audited("number", [*(a.value for a in Action), "lease_auto_renew"])
        register_audited("quarantine_policy", ["quarantine_policy.update"])
        register_audited(
            "vanity_tier",
            [
                "tier_price.propose",
                "tier_price.approve",
                "tier_price.reject",
                "vanity_tier.create",
                "vanity_tier.update",
            ],
        )
