"""FilterSets for number, reservation and lease lists (DESIGN §3.2)."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db.models import QuerySet

from core.formats import INPUT_HELP, normalize_number
from numbering import selectors
from numbering.lifecycle import State
from numbering.models import Lease, Number, Reservation

STATE_CHOICES = [(s.value, s.value) for s in State]


class NumberSearchFilter(df.FilterSet):
    """Search by any number format, prefix, digit pattern, vanity tier, kind, issuer."""

    number = df.CharFilter(method="filter_number", help_text=f"exact number: {INPUT_HELP}")
    prefix = df.CharFilter(method="filter_prefix", help_text=selectors.PREFIX_RULE)
    pattern = df.CharFilter(method="filter_pattern", help_text=selectors.PATTERN_RULE)
    kind = df.ChoiceFilter(choices=Number.Kind.choices)
    issuer = df.CharFilter(field_name="issuer__code", lookup_expr="iexact", help_text="issuer code, e.g. ROSHAN")
    vanity = df.BooleanFilter()
    vanity_tier = df.CharFilter()

    class Meta:
        model = Number
        fields: list[str] = []

    def filter_number(self, queryset: QuerySet[Number], name: str, value: Any) -> QuerySet[Number]:
        return queryset.filter(number=normalize_number(value)) if value else queryset

    def filter_prefix(self, queryset: QuerySet[Number], name: str, value: Any) -> QuerySet[Number]:
        return queryset.filter(selectors.prefix_q(value)) if value else queryset

    def filter_pattern(self, queryset: QuerySet[Number], name: str, value: Any) -> QuerySet[Number]:
        return queryset.filter(selectors.pattern_q(value)) if value else queryset


class TenantNumberFilter(NumberSearchFilter):
    state = df.MultipleChoiceFilter(choices=[(s, s) for s in ("RESERVED", "ASSIGNED")])


class AdminNumberFilter(NumberSearchFilter):
    state = df.MultipleChoiceFilter(choices=STATE_CHOICES)
    tenant = df.UUIDFilter(field_name="tenant_id")
    pool = df.CharFilter(field_name="pool__code", lookup_expr="iexact", help_text="inventory pool code")
    burned = df.BooleanFilter(field_name="burned_at", lookup_expr="isnull", exclude=True)


class ReservationFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=Reservation.Status.choices)

    class Meta:
        model = Reservation
        fields: list[str] = []


class LeaseFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=Lease.Status.choices)
    auto_renew = df.BooleanFilter()
    expires_before = df.IsoDateTimeFilter(field_name="expires_at", lookup_expr="lt")
    expires_after = df.IsoDateTimeFilter(field_name="expires_at", lookup_expr="gte")
    number = df.CharFilter(method="filter_number")

    class Meta:
        model = Lease
        fields: list[str] = []

    def filter_number(self, queryset: QuerySet[Lease], name: str, value: Any) -> QuerySet[Lease]:
        return queryset.filter(number__number=normalize_number(value)) if value else queryset


class AdminLeaseFilter(LeaseFilter):
    tenant = df.UUIDFilter(field_name="tenant_id")
