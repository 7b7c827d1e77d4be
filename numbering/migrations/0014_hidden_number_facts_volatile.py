"""numbering_hidden_number_facts (0013) changes a setting (set_config on app.scope, put back
before it returns), so it is VOLATILE, not STABLE: the planner may not fold or reuse its
calls, and PostgreSQL's rule that a STABLE function does not change state holds again.
Forward-compatible: one attribute of one function."""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    forward_compatible = True
    dependencies = [("numbering", "0013_hidden_number_refusal")]
    operations = [
        migrations.RunSQL(
            "ALTER FUNCTION numbering_hidden_number_facts(text) VOLATILE;",
            "ALTER FUNCTION numbering_hidden_number_facts(text) STABLE;",
        )
    ]
