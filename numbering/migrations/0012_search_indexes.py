"""Tenant search and reserve-by-criteria at 1M numbers (issue 11 item 5, ADR 1120).

- `number` gets COLLATE "C": byte order, so a prefix is one range of the unique index
  whatever the database's collation. PostgreSQL rebuilds the column's indexes but does not
  rewrite the table (a collation change of the same type is binary compatible). The
  previous release's queries (`=`, LIKE, ORDER BY number) run unchanged: numbers are ASCII
  `+` and digits (number_ascii_msisdn_or_short_code), which sort the same either way.
- Partial indexes on AVAILABLE rows in number order, alone and after kind / vanity tier:
  a search page (ORDER BY number LIMIT n) is an index range, never a sort of the pool.
- ANALYZE at the end: autovacuum may be off or behind (ADR 1120).
Additive: the state-only AlterField records the collation for Django.
"""

from __future__ import annotations

from django.db import migrations, models

COLLATE_C = 'ALTER TABLE numbering_number ALTER COLUMN number TYPE varchar(16) COLLATE "C";'
COLLATE_DEFAULT = "ALTER TABLE numbering_number ALTER COLUMN number TYPE varchar(16);"


class Migration(migrations.Migration):
    # A collation change on an ASCII-only column, three indexes and an ANALYZE (ADR 1803).
    forward_compatible = True
    dependencies = [
        ("contracts", "0005_import_upload_purged_at"),
        ("numbering", "0011_ascii_number_check"),
        ("pools", "0002_pool_watermark_state"),
    ]

    operations = [
        migrations.RunSQL(COLLATE_C, COLLATE_DEFAULT),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="number",
                    name="number",
                    field=models.CharField(
                        db_collation="C",
                        help_text="E.164 for MSISDNs, digits for short codes",
                        max_length=16,
                        unique=True,
                    ),
                )
            ]
        ),
        migrations.AddIndex(
            model_name="number",
            index=models.Index(condition=models.Q(("state", "AVAILABLE")), fields=["number"], name="number_available"),
        ),
        migrations.AddIndex(
            model_name="number",
            index=models.Index(
                condition=models.Q(("state", "AVAILABLE")), fields=["kind", "number"], name="number_available_kind"
            ),
        ),
        migrations.AddIndex(
            model_name="number",
            index=models.Index(
                condition=models.Q(("state", "AVAILABLE")),
                fields=["vanity_tier", "number"],
                name="number_available_tier",
            ),
        ),
        migrations.RunSQL("ANALYZE numbering_number;", migrations.RunSQL.noop),
    ]
