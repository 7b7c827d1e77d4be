"""FilterSets for the regulator export list."""

from __future__ import annotations

import django_filters as df

from exports.models import RegulatorExport


class RegulatorExportFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=RegulatorExport.Status.choices)

    class Meta:
        model = RegulatorExport
        fields = ["status"]
