"""RLS as a second line of defence (issue 13 item 6, ADR 1352).

Platform scope (app.scope = 'platform') is honoured only for a database role that is a
member of the NOLOGIN group `numbering_platform` (deploy/local/bootstrap_db.py creates it
and grants it to the app and owner roles). The restricted login role `numbering_tenant`
(DATABASE_TENANT_URL) is not a member: connected as it, set_config('app.scope',
'platform', true) reveals nothing. RLS now also covers audit events, idempotency records
and the outbox: the tenant role reads only its own audit events and none of the other two.

Runs as the owner role (no CREATEROLE): it grants table privileges to the tenant role when
that role exists, and the policies look the group up with to_regrole, so a database whose
cluster lacks the roles keeps working (platform scope is then never honoured — run
bootstrap_db first).
"""

from __future__ import annotations

from django.db import migrations

PLATFORM_GROUP = "numbering_platform"
TENANT_ROLE = "numbering_tenant"

FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION app_platform_member() RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT coalesce(pg_has_role(current_user, to_regrole('{PLATFORM_GROUP}')::oid, 'MEMBER'), false) $$;
CREATE OR REPLACE FUNCTION app_is_platform() RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT coalesce(current_setting('app.scope', true), '') = 'platform' AND app_platform_member() $$;
"""

OLD_FUNCTION = """
CREATE OR REPLACE FUNCTION app_is_platform() RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT coalesce(current_setting('app.scope', true), '') = 'platform' $$;
DROP FUNCTION IF EXISTS app_platform_member();
"""

# The app (platform-group) role keeps its access to these three; the tenant role sees its own
# audit events only. Inserting stays open (tenant actions append audit events).
NEW_TABLES = {
    "audit_auditevent": "app_platform_member() OR tenant_id = app_tenant_id()",
    "numbering_idempotencyrecord": "app_platform_member()",
    "numbering_outboxevent": "app_platform_member()",
}

GRANTS = f"""
DO $$
BEGIN
  IF to_regrole('{TENANT_ROLE}') IS NOT NULL THEN
    EXECUTE 'GRANT USAGE ON SCHEMA public TO {TENANT_ROLE}';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {TENANT_ROLE}';
    EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {TENANT_ROLE}';
    EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON audit_auditevent FROM {TENANT_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {TENANT_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {TENANT_ROLE}';
  ELSE
    RAISE NOTICE 'role {TENANT_ROLE} does not exist (run deploy/local/bootstrap_db.py); no grants';
  END IF;
END $$;
"""


def forward_sql() -> str:
    parts = [FUNCTIONS, GRANTS]
    for table, rule in NEW_TABLES.items():
        parts.append(
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"
            f" CREATE POLICY tenant_read ON {table} FOR SELECT USING ({rule});"
            f" CREATE POLICY tenant_update ON {table} FOR UPDATE USING ({rule}) WITH CHECK ({rule});"
            f" CREATE POLICY tenant_delete ON {table} FOR DELETE USING ({rule});"
            f" CREATE POLICY append ON {table} FOR INSERT WITH CHECK (true);"
        )
    return "\n".join(parts)


def reverse_sql() -> str:
    parts = [
        f"DROP POLICY IF EXISTS tenant_read ON {t}; DROP POLICY IF EXISTS tenant_update ON {t};"
        f" DROP POLICY IF EXISTS tenant_delete ON {t}; DROP POLICY IF EXISTS append ON {t};"
        f" ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY; ALTER TABLE {t} DISABLE ROW LEVEL SECURITY;"
        for t in NEW_TABLES
    ]
    parts.append(OLD_FUNCTION)
    return "\n".join(parts)


class Migration(migrations.Migration):
    # Policies only: the previous release connects as the app role, a member of
    # numbering_platform, and sees what it saw before (ADR 1352).
    forward_compatible = True
    dependencies = [
        ("numbering", "0007_lease_cache_sync"),
        ("core", "0001_initial"),
        ("audit", "0002_append_only"),
    ]
    operations = [migrations.RunSQL(forward_sql(), reverse_sql())]
