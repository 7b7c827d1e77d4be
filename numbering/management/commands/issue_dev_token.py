"""Print a JWT signed by the local dev key (.dev/jwt/) — never in production.

python manage.py issue_dev_token --role tenant.admin --tenant <TENANT_UUID> [--ttl 3600]
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core import authz as roles
from core.api.auth import issue_token
from core.api.devkeys import ensure_dev_keys


class Command(BaseCommand):
    help = "Print a development JWT for ROLE (tenant roles need --tenant). Refused in production."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--role",
            action="append",
            required=True,
            choices=roles.ALL_ROLES,
            help="role to put in the token (repeatable)",
        )
        parser.add_argument("--tenant", help="tenant UUID (required for tenant roles)")
        parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (1-86400, default 3600)")
        parser.add_argument("--sub", help="subject (default: dev-<role>)")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("issue_dev_token is refused when NUMBERING_ENV=production")
        if settings.JWT_JWKS_URL or settings.JWT_JWKS_FILE != str(settings.JWT_DEV_DIR / "jwks.json"):
            raise CommandError("the API does not trust the dev key: unset JWT_JWKS_URL/JWT_JWKS_FILE to use it")
        role_names: list[str] = options["role"]
        ttl: int = options["ttl"]
        if not 1 <= ttl <= 86400:
            raise CommandError(f"--ttl: must be between 1 and 86400 seconds, got {ttl}")
        tenant = options.get("tenant")
        wants_tenant = any(r in roles.TENANT_ROLES for r in role_names)
        if wants_tenant and any(r in roles.PLATFORM_ROLES for r in role_names):
            raise CommandError("--role: a token is either staff or tenant; do not mix staff and tenant roles")
        if wants_tenant and not tenant:
            raise CommandError("--tenant: required for tenant roles (the tenant's UUID)")
        if tenant and not wants_tenant:
            raise CommandError("--tenant: only tenant roles carry a tenant")
        if tenant:
            try:
                tenant = str(uuid.UUID(tenant))
            except ValueError:
                raise CommandError(f"--tenant: {tenant!r} is not a UUID") from None
        keys = ensure_dev_keys(settings.JWT_DEV_DIR)
        token = issue_token(
            private_key_pem=keys.private_key_path.read_bytes(),
            kid=keys.kid,
            subject=options.get("sub") or f"dev-{role_names[0]}",
            role_names=role_names,
            tenant_id=tenant,
            ttl_seconds=ttl,
        )
        self.stdout.write(token)
