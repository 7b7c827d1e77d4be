"""Make the audit table append-only (DESIGN §6).

A trigger refuses UPDATE, DELETE and TRUNCATE for every role, and the app role keeps
only INSERT and SELECT. Whoever can drop the trigger can still rewrite history, which is
what the signed checkpoints on WORM storage catch.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations
from psycopg import sql

TRIGGERS = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only: % refused on %', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit_auditevent
  FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_auditevent
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS audit_no_update_delete ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_no_truncate ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_refuse_change();
"""


def restrict_app_role(apps, schema_editor):  # type: ignore[no-untyped-def]
    role = sql.Identifier(settings.DATABASES["default"]["USER"])
    with schema_editor.connection.connection.cursor() as cursor:
        cursor.execute(sql.SQL("REVOKE ALL ON audit_auditevent FROM {}").format(role))
        cursor.execute(sql.SQL("GRANT SELECT, INSERT ON audit_auditevent TO {}").format(role))


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial"), ("numbering", "0000_app_role_grants")]
    operations = [
        migrations.RunSQL(TRIGGERS, REVERSE),
        migrations.RunPython(restrict_app_role, migrations.RunPython.noop),
    ]
