from __future__ import annotations

from django.apps import AppConfig


class NumberingConfig(AppConfig):
    name = "numbering"
    default_auto_field = "django.db.models.BigAutoField"
