from __future__ import annotations

from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit.services import register_audited
        from contracts.services import CONTRACT_TRANSITIONS

        register_audited("signing_key", ["signing_key.add", "signing_key.approve", "signing_key.revoke"])
        register_audited("contract", [f"contract_{verb}" for verb in CONTRACT_TRANSITIONS])
        register_audited("inventory_import", ["inventory.import"])
        # Reference data changed in the admin (ADR 1351).
        register_audited("contract", ["contract.create", "contract.update"])
        register_audited("issuer", ["issuer.create", "issuer.update"])
        register_audited("number_block", ["number_block.create", "number_block.update"])
