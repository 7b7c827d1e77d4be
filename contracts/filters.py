"""Query filters of the contracts REST endpoints."""

from __future__ import annotations

import django_filters as df

from contracts.models import Contract, InventoryImport, NumberBlock


class ContractFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=Contract.Status.choices)
    kind = df.ChoiceFilter(choices=Contract.Kind.choices)
    issuer = df.CharFilter(field_name="issuer__code", lookup_expr="iexact")

    class Meta:
        model = Contract
        fields: list[str] = []


class BlockFilter(df.FilterSet):
    kind = df.ChoiceFilter(choices=NumberBlock.Kind.choices)
    issuer = df.CharFilter(field_name="issuer__code", lookup_expr="iexact")
    contract = df.CharFilter(field_name="contract__reference")

    class Meta:
        model = NumberBlock
        fields: list[str] = []


class ImportFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=InventoryImport.Status.choices)
    issuer = df.CharFilter(field_name="issuer__code", lookup_expr="iexact")

    class Meta:
        model = InventoryImport
        fields: list[str] = []
