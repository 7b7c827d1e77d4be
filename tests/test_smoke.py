from __future__ import annotations

import pytest
from django.db import connection


@pytest.mark.django_db
def test_service_connects_as_an_app_role_that_cannot_bypass_rls() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        user, superuser, bypass = cursor.fetchone()
    assert user == "numbering_app"
    assert not superuser and not bypass
