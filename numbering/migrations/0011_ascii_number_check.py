"""Numbers are stored in ASCII only (issue 16, ADR 1600): a CHECK constraint behind core.formats.

An MSISDN row is `+93` and 9 ASCII digits, a short code 3-5 ASCII digits not starting with 0
(PostgreSQL's `[0-9]` is the ASCII range; its `\\d` is not used). Before issue 16 the parser
let a Persian digit through (`+937۹1234567`), so a production table may hold such a row:

1. ADD CONSTRAINT … NOT VALID — a short ACCESS EXCLUSIVE lock, no scan; from then on every
   INSERT and UPDATE is checked.
2. A count of the rows that break it: if there are any, the migration stops with the count
   and the runbook (docs/runbooks/non-ascii-numbers.md) — an operator decides what such
   a row is (a twin of an ASCII number, or a number to rewrite), not a migration.
3. VALIDATE CONSTRAINT — a scan under SHARE UPDATE EXCLUSIVE, which blocks no reads or writes.

Not atomic, so each step commits on its own (the validation scan never holds step 1's
lock); every step is idempotent, so a rerun after the runbook picks up where it stopped.

Forward-compatible (ADR 1803, reviewed): the constraint refuses only what the previous
release must never have written — its own parser stores the same shapes; the one
difference is the non-ASCII digit of issue 16, which is the bug. `kind` is not changed.
"""

from __future__ import annotations

from django.db import migrations, models

# Frozen copies of core.formats.MSISDN_STORED_SQL / SHORT_CODE_STORED_SQL as of this migration
# (tests/numbering/test_number_corpus.py checks they still agree).
MSISDN_STORED_SQL = r"^\+93[0-9]{9}$"
SHORT_CODE_STORED_SQL = r"^[1-9][0-9]{2,4}$"

NAME = "number_ascii_msisdn_or_short_code"
CONDITION = (
    f"(kind = 'MSISDN' AND number ~ '{MSISDN_STORED_SQL}') OR (kind = 'SHORT_CODE' AND number ~ '{SHORT_CODE_STORED_SQL}')"
)

ADD_NOT_VALID = f"""
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{NAME}' AND conrelid = 'numbering_number'::regclass) THEN
    ALTER TABLE numbering_number ADD CONSTRAINT {NAME} CHECK ({CONDITION}) NOT VALID;
  END IF;
END $$;
"""

COUNT_THEN_VALIDATE = f"""
DO $$
DECLARE
  bad bigint;
BEGIN
  SELECT count(*) INTO bad FROM numbering_number WHERE NOT ({CONDITION});
  IF bad > 0 THEN
    RAISE EXCEPTION 'numbering 0009: % number row(s) are not ASCII E.164 (+93 and 9 digits) or a 3-5 digit short code; see docs/runbooks/non-ascii-numbers.md', bad;
  END IF;
END $$;
ALTER TABLE numbering_number VALIDATE CONSTRAINT {NAME};
"""

DROP = f"ALTER TABLE numbering_number DROP CONSTRAINT IF EXISTS {NAME};"


class Migration(migrations.Migration):
    atomic = False
    forward_compatible = True  # ADR 1803: reviewed, see the module docstring

    dependencies = [("numbering", "0010_tenant_role_own_rows")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="number",
                    constraint=models.CheckConstraint(
                        condition=models.Q(kind="MSISDN", number__regex=MSISDN_STORED_SQL)
                        | models.Q(kind="SHORT_CODE", number__regex=SHORT_CODE_STORED_SQL),
                        name=NAME,
                    ),
                )
            ]
        ),
        migrations.RunSQL(ADD_NOT_VALID, reverse_sql=DROP),
        migrations.RunSQL(COUNT_THEN_VALIDATE, reverse_sql=migrations.RunSQL.noop),
    ]
