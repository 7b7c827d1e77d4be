"""Issue 13 item 10 (ADR 1354): when an import's stored upload was purged. Additive and
nullable, so the previous release runs against this schema unchanged."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("contracts", "0004_contract_ending_notice")]

    operations = [
        migrations.AddField(
            model_name="inventoryimport",
            name="purged_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
