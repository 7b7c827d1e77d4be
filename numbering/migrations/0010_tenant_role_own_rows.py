"""The tenant role reads its own idempotency records and outbox events (issue 13 item 6,
ADR 1352).

Tenant requests now run as `numbering_tenant`. Their idempotency claim (`INSERT … RETURNING`,
`SELECT`, `UPDATE … RETURNING`) and their outbox insert (`INSERT … RETURNING`) need the new
row to pass the table's SELECT policy, which 0008 kept to the platform group. A tenant (the
tenant session's `app.tenant_id`) now also sees:
- idempotency records of its own scopes: `tenant:<tenant_id>:<sub>` (a tenant user) and
  `<kind>:<name>:tenant:<tenant_id>` (a service acting for it) — core.actors.Actor.identity;
- outbox events whose envelope names it as the tenant.
Nothing else changes for the app role (a platform-group member sees everything, as before).
Grants and policies only: forward-compatible with the previous release.
"""

from __future__ import annotations

import importlib

from django.db import migrations

# The same grants as 0008, again: a database migrated past 0008 before bootstrap_db created
# the tenant role has none, and tenant requests now connect as that role. Idempotent.
GRANTS = importlib.import_module("numbering.migrations.0008_platform_role_rls").GRANTS

OWN_SCOPE = (
    "app_platform_member() OR scope LIKE 'tenant:' || app_tenant_id()::text || ':%'"
    " OR scope LIKE '%:tenant:' || app_tenant_id()::text"
)
OWN_EVENT = "app_platform_member() OR envelope->>'tenant_id' = app_tenant_id()::text"
PLATFORM_ONLY = "app_platform_member()"


def policies(table: str, rule: str) -> str:
    return (
        f"DROP POLICY IF EXISTS tenant_read ON {table}; DROP POLICY IF EXISTS tenant_update ON {table};"
        f" DROP POLICY IF EXISTS tenant_delete ON {table};"
        f" CREATE POLICY tenant_read ON {table} FOR SELECT USING ({rule});"
        f" CREATE POLICY tenant_update ON {table} FOR UPDATE USING ({rule}) WITH CHECK ({rule});"
        f" CREATE POLICY tenant_delete ON {table} FOR DELETE USING ({rule});"
    )


class Migration(migrations.Migration):
    forward_compatible = True
    dependencies = [("numbering", "0009_vanity_tier_prices")]
    operations = [
        migrations.RunSQL(GRANTS, migrations.RunSQL.noop),
        migrations.RunSQL(
            policies("numbering_idempotencyrecord", OWN_SCOPE) + policies("numbering_outboxevent", OWN_EVENT),
            policies("numbering_idempotencyrecord", PLATFORM_ONLY) + policies("numbering_outboxevent", PLATFORM_ONLY),
        )
    ]
