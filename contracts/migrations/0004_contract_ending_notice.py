"""Issue 16 (ADR 1611): the warnings sent before a terminated contract ends, one row each.

Additive only (a new table): the previous release runs against it unchanged (ADR 1803)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contracts', '0003_signing_key_four_eyes'),
        ('pools', '0002_pool_watermark_state'),
    ]

    operations = [
        migrations.CreateModel(
            name='ContractEndingNotice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('days_before', models.PositiveSmallIntegerField()),
                ('ends_on', models.DateField()),
                ('numbers', models.PositiveIntegerField(help_text="the tenant's RESERVED/ASSIGNED numbers when warned")),
                ('sent_at', models.DateTimeField()),
                ('contract', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='ending_notices', to='contracts.contract')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='pools.tenant')),
            ],
            options={
                'ordering': ['contract_id', '-sent_at'],
                'constraints': [models.UniqueConstraint(fields=('contract', 'tenant', 'days_before', 'ends_on'), name='contract_ending_notice_once')],
            },
        ),
    ]
