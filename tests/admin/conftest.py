"""Staff users for admin tests; import fixtures come from tests/contracts/conftest.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from core import authz as roles
from core.authz import ensure_staff_groups
from tests.contracts.conftest import _import_dir, atra, pools, roshan, system  # noqa: F401


def staff_user(username: str, *groups: str) -> User:
    ensure_staff_groups()
    user = User.objects.create_user(username, password="pw-" + username, is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


@pytest.fixture
def ops_user(db: Any) -> User:
    return staff_user("olga", roles.COMMERCE_OPS)


@pytest.fixture
def ops_client(client: Any, ops_user: User) -> Any:
    client.force_login(ops_user)
    return client
