from __future__ import annotations

from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    default_auto_field = "django.db.models.BigAutoField"
