"""Row-level security on numbers, reservations, leases and tenant pools (DESIGN §9).

The policies read app.scope / app.tenant_id, which only core.rls sets (with
set_config(..., true), i.e. for the current transaction). Tenants see their own rows
plus AVAILABLE inventory (and numbers they just released into quarantine, so a release's
RETURNING row stays visible to them); platform scope sees everything; no scope sees only
AVAILABLE inventory. FORCE makes the policies apply to the table owner too.
"""

from __future__ import annotations

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION app_is_platform() RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT coalesce(current_setting('app.scope', true), '') = 'platform' $$;
CREATE OR REPLACE FUNCTION app_tenant_id() RETURNS uuid LANGUAGE sql STABLE AS
  $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;
"""

NUMBER_VISIBLE = (
    "app_is_platform() OR state = 'AVAILABLE' OR tenant_id = app_tenant_id()"
    " OR (state = 'QUARANTINED' AND tenant_id IS NULL AND last_tenant_id = app_tenant_id())"
)
OWN_ROWS = "app_is_platform() OR tenant_id = app_tenant_id()"

TABLES = {
    "numbering_number": NUMBER_VISIBLE,
    "numbering_reservation": OWN_ROWS,
    "numbering_lease": OWN_ROWS,
    "pools_tenantpool": OWN_ROWS,
}


def forward_sql() -> str:
    parts = [FUNCTIONS]
    for table, rule in TABLES.items():
        parts.append(
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;"
            f" ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"
            f" CREATE POLICY tenant_isolation ON {table} FOR ALL USING ({rule}) WITH CHECK ({rule});"
        )
    return "\n".join(parts)


def reverse_sql() -> str:
    parts = [
        f"DROP POLICY IF EXISTS tenant_isolation ON {t}; ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY;"
        f" ALTER TABLE {t} DISABLE ROW LEVEL SECURITY;"
        for t in TABLES
    ]
    parts.append("DROP FUNCTION IF EXISTS app_is_platform(); DROP FUNCTION IF EXISTS app_tenant_id();")
    return "\n".join(parts)


class Migration(migrations.Migration):
    dependencies = [("numbering", "0001_initial"), ("pools", "0001_initial")]
    operations = [migrations.RunSQL(forward_sql(), reverse_sql())]
