"""Seed the quarantine cool-offs of DESIGN §2.1 (Legal approves changes in the admin)."""

from __future__ import annotations

from django.db import migrations

DEFAULTS = [
    ("MSISDN", 90, "MSISDN released / expired / recalled"),
    ("SHORT_CODE", 30, "Standard short code released / expired / recalled"),
    ("VANITY", 365, "Vanity short code, any end"),
    ("COMPLIANCE", 365, "Any compliance recall (suspension, deletion, fraud)"),
    ("TEST", 0, "Test numbers"),
    ("ASSIGNED_IN_ERROR", 0, "Release by ops with reason ASSIGNED_IN_ERROR (never served the tenant)"),
]


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    policy = apps.get_model("numbering", "QuarantinePolicy")
    for case, days, description in DEFAULTS:
        policy.objects.using(schema_editor.connection.alias).get_or_create(
            case=case, defaults={"days": days, "description": description, "approved_by": "design default"}
        )


class Migration(migrations.Migration):
    dependencies = [("numbering", "0002_row_level_security")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
