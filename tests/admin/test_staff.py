"""Staff groups ↔ roles, and the development superuser."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError

from core import authz as roles
from core.authz import ensure_staff_groups, roles_of, staff_actor

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _dev_dir(settings, tmp_path):
    settings.DEV_DIR = tmp_path / "dev"


def test_ensure_dev_superuser_creates_staff_admin_with_stored_password(settings):
    out = StringIO()
    call_command("ensure_dev_superuser", stdout=out)
    password = (settings.DEV_DIR / "admin_password").read_text().strip()
    user = User.objects.get(username="admin")
    assert user.is_staff and user.is_superuser and user.check_password(password)
    assert password in out.getvalue()
    assert set(Group.objects.values_list("name", flat=True)) == set(roles.STAFF_ROLES)
    call_command("ensure_dev_superuser", stdout=StringIO())  # idempotent, same password
    assert User.objects.get(username="admin").check_password(password)


def test_ensure_dev_superuser_refuses_production(settings):
    settings.NUMBERING_ENV = "production"
    with pytest.raises(CommandError, match="production"):
        call_command("ensure_dev_superuser")
    assert not User.objects.exists()


def test_groups_carry_the_permissions_of_their_role():
    ensure_staff_groups()

    def perms(role):
        return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

    assert {"change_number", "add_inventoryimport", "view_auditevent"} <= perms(roles.COMMERCE_OPS)
    assert "delete_number" not in perms(roles.COMMERCE_OPS)
    assert "change_quarantinepolicy" in perms(roles.NUMBERING_ADMIN)
    assert "change_quarantinepolicy" not in perms(roles.COMMERCE_OPS)
    assert all(p.startswith("view_") for p in perms(roles.AUDITOR))
    assert "change_number" in perms(roles.COMPLIANCE_OFFICER)
    assert "add_regulatorexport" in perms(roles.REGULATOR_EXPORTER)
    # The audit trail is append-only, even for the admin role.
    assert not any(p.endswith("_auditevent") and not p.startswith("view_") for p in perms(roles.NUMBERING_ADMIN))


def test_roles_come_from_staff_groups_and_superuser():
    ensure_staff_groups()
    user = User.objects.create_user("olga", is_staff=True)
    user.groups.add(Group.objects.get(name=roles.COMMERCE_OPS), Group.objects.create(name="not-a-role"))
    assert roles_of(user) == frozenset({roles.COMMERCE_OPS})
    actor = staff_actor(user)
    assert actor.identity == "user:olga" and actor.roles == frozenset({roles.COMMERCE_OPS})
    boss = User.objects.create_superuser("boss")
    assert roles.NUMBERING_ADMIN in roles_of(boss)
    assert roles_of(None) == frozenset()
