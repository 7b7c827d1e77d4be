"""FilterSets for number, reservation and lease lists (DESIGN §3.2)."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django import forms
from django.db.models import Q, QuerySet

from core.formats import INPUT_HELP, normalize_number
from numbering import selectors
from numbering.lifecycle import State
from numbering.models import Lease, Number, Reservation

STATE_CHOICES = [(s.value, s.value) for s in State]


class StrictBooleanField(forms.Field):
    """A query-string boolean that refuses what it cannot read: django-filter's BooleanFilter
    maps `vanity=maybe` to "no filter", which would answer a search the caller did not ask."""

    TRUE = frozenset({"true", "1", "yes", "on"})
    FALSE = frozenset({"false", "0", "no", "off"})
    default_error_messages = {"invalid": "must be true or false (also accepted: 1/0, yes/no, on/off)"}

    def to_python(self, value: Any) -> bool | None:
        if value is None or value == "":
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class StrictBooleanFilter(df.BooleanFilter):
    field_class = StrictBooleanField


class NumberSearchFilter(df.FilterSet):
    """Search by any number format, prefix, digit pattern, vanity tier, kind, issuer: the form
    validates the query string, `criteria()` turns it into the query (never the filters'
    own lookups)."""

    number = df.CharFilter(help_text=f"exact number: {INPUT_HELP}")
    prefix = df.CharFilter(help_text=selectors.PREFIX_RULE)
    pattern = df.CharFilter(help_text=selectors.PATTERN_RULE)
    kind = df.ChoiceFilter(choices=Number.Kind.choices)
    issuer = df.CharFilter(field_name="issuer__code", lookup_expr="iexact", help_text="issuer code, e.g. ROSHAN")
    vanity = StrictBooleanFilter()
    vanity_tier = df.CharFilter()

    class Meta:
        model = Number
        fields: list[str] = []

    def get_form_class(self) -> Any:
        """django-filter builds a form class per request; its fields depend only on the
        declared filters, so each FilterSet class builds its own once (a form instance still
        deep-copies the fields it validates with)."""
        cls = type(self)
        form_class = cls.__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            cls._form_class = form_class  # type: ignore[attr-defined]
        return form_class

    CRITERIA = ("number", "prefix", "pattern", "kind", "issuer", "vanity", "vanity_tier")

    def criteria(self) -> Q:
        """The validated search as one Q: selectors.number_criteria_q is its only reading of
        number, prefix, pattern, kind, issuer, vanity and vanity_tier, for the ORM filter
        below and for the tenant search's compiled page (numbering/apis/tenant.py)."""
        data = self.form.cleaned_data
        return selectors.number_criteria_q(**{name: data.get(name) for name in self.CRITERIA})

    def filter_queryset(self, queryset: QuerySet[Number]) -> QuerySet[Number]:
        queryset = queryset.filter(self.criteria())
        for name, value in self.form.cleaned_data.items():
            if name not in self.CRITERIA:  # a subclass's own filters (state, tenant, pool, ...)
                queryset = self.filters[name].filter(queryset, value)
        return queryset


class TenantNumberFilter(NumberSearchFilter):
    state = df.MultipleChoiceFilter(choices=[(s, s) for s in ("RESERVED", "ASSIGNED")])


class AdminNumberFilter(NumberSearchFilter):
    state = df.MultipleChoiceFilter(choices=STATE_CHOICES)
    tenant = df.UUIDFilter(field_name="tenant_id")
    pool = df.CharFilter(field_name="pool__code", lookup_expr="iexact", help_text="inventory pool code")
    burned = StrictBooleanFilter(field_name="burned_at", lookup_expr="isnull", exclude=True)


class ReservationFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=Reservation.Status.choices)

    class Meta:
        model = Reservation
        fields: list[str] = []


class LeaseFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=Lease.Status.choices)
    auto_renew = StrictBooleanFilter()
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
