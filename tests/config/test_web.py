from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_liveness_and_readiness() -> None:
    client = Client()
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}
    assert ready["X-Request-ID"]


@pytest.mark.django_db
def test_the_admin_asks_staff_to_log_in() -> None:
    response = Client().get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_every_domain_model_is_registered_in_the_admin() -> None:
    from django.apps import apps
    from django.contrib import admin

    domain = [
        m
        for app in ("contracts", "pools", "numbering", "audit", "exports")
        for m in apps.get_app_config(app).get_models()
    ]
    missing = [
        m.__name__
        for m in domain
        # Plumbing, not domain data: the lease-cache epoch and change queue (ADR 1200).
        if m not in admin.site._registry
        and m.__name__ not in {"IdempotencyRecord", "ChainHead", "LeaseCacheEpoch", "LeaseCacheChange"}
    ]
    assert not missing
