"""Give the app role (DATABASE_URL's user) data access, and nothing more.

Runs as the owner role before any table exists: default privileges make every table the
owner creates later readable and writable by the app role; tables that already exist are
granted explicitly. The app role never owns a table, so FORCE ROW LEVEL SECURITY applies
to it (ADR 0002). The audit table's UPDATE/DELETE/TRUNCATE are revoked in audit 0002.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations
from psycopg import sql


def grant(apps, schema_editor):  # type: ignore[no-untyped-def]
    app_role = sql.Identifier(settings.DATABASES["default"]["USER"])
    statements = [
        "GRANT USAGE ON SCHEMA public TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
    ]
    raw = schema_editor.connection.connection  # psycopg connection, for sql.Identifier
    with raw.cursor() as cursor:
        for statement in statements:
            cursor.execute(sql.SQL(statement).format(role=app_role))


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    run_before = [("contenttypes", "0001_initial"), ("auth", "0001_initial")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
