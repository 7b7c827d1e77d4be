from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from core import authz as roles
from core.authz import ensure_staff_groups


class Command(BaseCommand):
    help = "Development only: staff groups for the roles, and a superuser whose password is in .dev/admin_password."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.NUMBERING_ENV == "production":
            raise CommandError("ensure_dev_superuser refuses to run when NUMBERING_ENV=production")
        path = settings.DEV_DIR / "admin_password"
        if not path.exists():
            settings.DEV_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(18) + "\n")
            path.chmod(0o600)
        password = path.read_text().strip()
        username = options["username"]
        with transaction.atomic():
            counts = ensure_staff_groups()
            user, created = get_user_model().objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = user.is_active = True
            user.set_password(password)
            user.save()
            user.groups.add(*user.groups.model.objects.filter(name=roles.NUMBERING_ADMIN))
        groups = ", ".join(f"{name} ({n} permissions)" for name, n in counts.items())
        self.stdout.write(f"staff groups: {groups}")
        self.stdout.write(
            f"dev admin {'created' if created else 'ready'}: username {username!r}, password {password!r}"
            f" (stored in {path}; development only)"
        )
