"""numbering_analyze_numbers(): lets the app role refresh the planner statistics of the
number table after a bulk import (numbering.inventory).

PostgreSQL 15 lets only a table's owner ANALYZE it; for anyone else ANALYZE is skipped
with a warning. The app role never owns a table (ADR 0002), so the owner provides this
one narrow SECURITY DEFINER function, executable by the app role alone.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations
from psycopg import sql

FUNCTION = """
CREATE OR REPLACE FUNCTION numbering_analyze_numbers() RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS
  $$ BEGIN ANALYZE public.numbering_number; END $$;
REVOKE ALL ON FUNCTION numbering_analyze_numbers() FROM PUBLIC;
"""
REVERSE = "DROP FUNCTION IF EXISTS numbering_analyze_numbers();"


def grant(apps, schema_editor):  # type: ignore[no-untyped-def]
    role = sql.Identifier(settings.DATABASES["default"]["USER"])
    with schema_editor.connection.connection.cursor() as cursor:
        cursor.execute(sql.SQL("GRANT EXECUTE ON FUNCTION numbering_analyze_numbers() TO {}").format(role))


class Migration(migrations.Migration):
    # Adds a function and its grant; the previous release's code never calls it (ADR 1803).
    forward_compatible = True
    dependencies = [("numbering", "0005_shared_tables_move_to_core_and_events")]
    operations = [
        migrations.RunSQL(FUNCTION, REVERSE),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
