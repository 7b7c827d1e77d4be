from __future__ import annotations

from django.apps import AppConfig


class GrpcServerConfig(AppConfig):
    name = "grpc_server"
    default_auto_field = "django.db.models.BigAutoField"
