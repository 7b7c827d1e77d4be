"""Request and response shapes of the numbering endpoints (admin and tenant)."""

from __future__ import annotations

import functools
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.formats import INPUT_HELP
from numbering import lifecycle, snapshots
from numbering.models import Lease, Number, QuarantinePolicy, Reservation, TierPriceChange, VanityTier
from numbering.services import MAX_LEASE_DAYS, MAX_RESERVE_BATCH
from numbering.snapshots import NUMBER_FIELDS

# --- responses ---------------------------------------------------------------------------------


class PriceSerializer(serializers.Serializer):
    """A vanity tier's price (ADR 1650): decimal strings in AFN, never floats."""

    tier = serializers.CharField()
    monthly_price = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)
    setup_fee = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)
    currency = serializers.CharField()


class NumberSerializer(serializers.ModelSerializer):
    operator_code = serializers.CharField(source="issuer.code", read_only=True)
    pool = serializers.CharField(source="pool.code", read_only=True, allow_null=True, default=None)
    tenant_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = Number
        fields = [*NUMBER_FIELDS, "pool"]
        read_only_fields = fields


class AvailableNumberSerializer(NumberSerializer):
    """Tenant search: a vanity code shows its tier's price in force now (from the view's
    `prices` context, one query per page); standard numbers have none."""

    price = serializers.SerializerMethodField()

    class Meta(NumberSerializer.Meta):
        fields = [*NumberSerializer.Meta.fields, "price"]
        read_only_fields = fields

    @extend_schema_field(PriceSerializer(allow_null=True))
    def get_price(self, obj: Number) -> dict[str, Any] | None:
        return price_shown(obj.vanity, obj.vanity_tier, self.context.get("prices", {}))


def price_shown(vanity: bool, tier: str | None, prices: dict[str, Any]) -> dict[str, Any] | None:
    """The price a search shows: a vanity code's tier price in force; none for the rest."""
    return snapshots.price_snapshot(prices.get(tier)) if vanity and tier else None


# Tenant search pages are read as rows, not models (ADR 1120, 2026-12-03 amendment): the
# columns each field of AvailableNumberSerializer reads, and its own fields to format them, so
# the shape and the formatting stay the serializer's (tests/api/test_search_rows.py).
_ROW_SOURCES = {"operator_code": "issuer__code", "pool": "pool__code"}
_ROW_FIELDS = tuple(
    (name, _ROW_SOURCES.get(name, name)) for name in AvailableNumberSerializer.Meta.fields if name != "price"
)
AVAILABLE_COLUMNS = tuple(column for _, column in _ROW_FIELDS)


@functools.cache
def _row_formatters() -> list[tuple[str, str, serializers.Field]]:
    """(key, column, the serializer's field) per response key, built once per process."""
    fields = AvailableNumberSerializer().fields
    return [(name, column, fields[name]) for name, column in _ROW_FIELDS]


def available_rows(rows: list[dict[str, Any]], prices: dict[str, Any]) -> list[dict[str, Any]]:
    """What `AvailableNumberSerializer(many=True)` makes of these numbers, from rows of
    AVAILABLE_COLUMNS: the same keys in the same order, each value formatted by the
    serializer's own field (None stays None, as DRF leaves it)."""
    formatters = _row_formatters()
    out = []
    for row in rows:
        item = {name: None if row[column] is None else field.to_representation(row[column])
                for name, column, field in formatters}  # fmt: skip
        item["price"] = price_shown(row["vanity"], row["vanity_tier"], prices)
        out.append(item)
    return out


class AdminNumberSerializer(NumberSerializer):
    last_tenant_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta(NumberSerializer.Meta):
        fields = [
            *NumberSerializer.Meta.fields,
            "is_test",
            "last_tenant_id",
            "state_changed_at",
            "last_disconnected_at",
            "burned_at",
            "created_at",
        ]
        read_only_fields = fields


class RecordedPriceMixin(serializers.Serializer):
    """The vanity tier price a reservation or lease recorded (ADR 1650); null otherwise."""

    price = serializers.SerializerMethodField()

    @extend_schema_field(PriceSerializer(allow_null=True))
    def get_price(self, obj: Lease | Reservation) -> dict[str, Any] | None:
        return snapshots.recorded_price(obj)


class ReservationSerializer(RecordedPriceMixin, serializers.ModelSerializer):
    number = serializers.CharField(source="number.number", read_only=True)
    tenant_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Reservation
        fields = ["id", "number", "tenant_id", "status", "created_at", "expires_at", "ended_at", "price"]
        read_only_fields = fields


class LeaseSerializer(RecordedPriceMixin, serializers.ModelSerializer):
    number = serializers.CharField(source="number.number", read_only=True)
    tenant_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Lease
        fields = [
            "id",
            "number",
            "tenant_id",
            "status",
            "starts_at",
            "expires_at",
            "term_days",
            "auto_renew",
            "renewals",
            "ended_at",
            "end_reason",
            "price",
        ]
        read_only_fields = fields


class NumberDetailSerializer(NumberSerializer):
    lease = serializers.SerializerMethodField()

    class Meta(NumberSerializer.Meta):
        fields = [*NumberSerializer.Meta.fields, "lease"]
        read_only_fields = fields

    @extend_schema_field(LeaseSerializer(allow_null=True))
    def get_lease(self, obj: Number) -> dict[str, Any] | None:
        lease = obj.leases.filter(status=Lease.Status.ACTIVE).first()
        return LeaseSerializer(lease).data if lease else None


class AuditEventBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField()
    tenant_id = serializers.UUIDField(allow_null=True)
    request_id = serializers.CharField()


class AdminNumberDetailSerializer(AdminNumberSerializer):
    lease = serializers.SerializerMethodField()
    reservations = serializers.SerializerMethodField()
    leases = serializers.SerializerMethodField()
    audit_events = serializers.SerializerMethodField()

    class Meta(AdminNumberSerializer.Meta):
        fields = [*AdminNumberSerializer.Meta.fields, "lease", "reservations", "leases", "audit_events"]
        read_only_fields = fields

    def _history(self, obj: Number) -> dict[str, Any]:
        return self.context["history"]

    @extend_schema_field(LeaseSerializer(allow_null=True))
    def get_lease(self, obj: Number) -> dict[str, Any] | None:
        lease = next((x for x in self._history(obj)["leases"] if x.status == Lease.Status.ACTIVE), None)
        return LeaseSerializer(lease).data if lease else None

    @extend_schema_field(ReservationSerializer(many=True))
    def get_reservations(self, obj: Number) -> list[Any]:
        return ReservationSerializer(self._history(obj)["reservations"], many=True).data

    @extend_schema_field(LeaseSerializer(many=True))
    def get_leases(self, obj: Number) -> list[Any]:
        return LeaseSerializer(self._history(obj)["leases"], many=True).data

    @extend_schema_field(AuditEventBriefSerializer(many=True))
    def get_audit_events(self, obj: Number) -> list[Any]:
        return AuditEventBriefSerializer(self._history(obj)["audit_events"], many=True).data


class LeaseSnapshotSerializer(serializers.Serializer):
    lease_id = serializers.UUIDField()
    tenant_id = serializers.UUIDField()
    status = serializers.CharField()
    starts_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    term_days = serializers.IntegerField()
    auto_renew = serializers.BooleanField()
    renewals = serializers.IntegerField()


class ReservationSnapshotSerializer(serializers.Serializer):
    reservation_id = serializers.UUIDField()
    tenant_id = serializers.UUIDField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class NumberSnapshotSerializer(serializers.Serializer):
    number = serializers.CharField()
    kind = serializers.CharField()
    state = serializers.CharField()
    operator_code = serializers.CharField()
    vanity = serializers.BooleanField()
    vanity_tier = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField()
    tenant_id = serializers.UUIDField(allow_null=True)
    reserved_until = serializers.DateTimeField(allow_null=True)
    quarantine_until = serializers.DateTimeField(allow_null=True)
    lease = LeaseSnapshotSerializer(allow_null=True)


class MutationSerializer(serializers.Serializer):
    """The result of a number action (canonical JSON; replays are byte-for-byte identical)."""

    number = NumberSnapshotSerializer()
    reservation = ReservationSnapshotSerializer(allow_null=True)
    lease = LeaseSnapshotSerializer(allow_null=True)


class BatchMutationSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = MutationSerializer(many=True)


class AutoRenewResultSerializer(serializers.Serializer):
    lease = LeaseSnapshotSerializer()
    number = serializers.CharField()


class TierPriceChangeSerializer(serializers.ModelSerializer):
    tier = serializers.CharField(source="tier_id", read_only=True)
    monthly_price = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)
    setup_fee = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = TierPriceChange
        fields = [
            "id",
            "tier",
            "monthly_price",
            "setup_fee",
            "currency",
            "status",
            "effective_from",
            "reason",
            "proposed_by",
            "proposed_at",
            "decided_by",
            "decided_at",
            "decision_note",
        ]
        read_only_fields = fields


class VanityTierSerializer(serializers.ModelSerializer):
    """A tier with its price in force now and its pending change (context `prices`, `pending`)."""

    price = serializers.SerializerMethodField()
    pending_change = serializers.SerializerMethodField()

    class Meta:
        model = VanityTier
        fields = ["code", "name", "currency", "is_active", "price", "pending_change"]
        read_only_fields = fields

    @extend_schema_field(PriceSerializer(allow_null=True))
    def get_price(self, obj: VanityTier) -> dict[str, Any] | None:
        return snapshots.price_snapshot(self.context.get("prices", {}).get(obj.code))

    @extend_schema_field(TierPriceChangeSerializer(allow_null=True))
    def get_pending_change(self, obj: VanityTier) -> dict[str, Any] | None:
        pending = self.context.get("pending", {}).get(obj.code)
        return dict(TierPriceChangeSerializer(pending).data) if pending else None


class TierPriceProposeSerializer(serializers.Serializer):
    tier = serializers.CharField(max_length=16, help_text="the tier's code, e.g. GOLD")
    monthly_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, help_text='AFN per month, a decimal string, e.g. "12000.00"'
    )
    setup_fee = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, help_text="AFN, charged once per assignment"
    )
    effective_from = serializers.DateTimeField(
        required=False, allow_null=True, help_text="not in the past; absent = in force from the approval on"
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class TierPriceDecisionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class QuarantinePolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = QuarantinePolicy
        fields = ["case", "days", "description", "approved_by", "approved_at", "updated_at"]
        read_only_fields = fields


class QuarantinePolicyUpdateSerializer(serializers.Serializer):
    days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    approved_by = serializers.CharField(max_length=150, help_text="who (Legal) approved the change")
    approved_at = serializers.DateTimeField(help_text="when it was approved (not in the future)")


# --- requests -----------------------------------------------------------------------------------

_VERSION = {
    "required": False,
    "min_value": 0,
    "help_text": "0 or absent = not checked; else refuse with CONFLICT if the number's version differs",
}


class _Versioned(serializers.Serializer):
    expected_version = serializers.IntegerField(**_VERSION)  # type: ignore[arg-type]


class ReasonSerializer(_Versioned):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")


class RecallSerializer(ReasonSerializer):
    compliance = serializers.BooleanField(
        required=False, default=False, help_text="a compliance recall (suspension, deletion, fraud): 365-day cool-off"
    )


class TenantAssignSerializer(_Versioned):
    reservation_id = serializers.UUIDField(required=False, allow_null=True)
    lease_days = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_LEASE_DAYS, help_text="0 or absent = the tenant pool's default"
    )
    auto_renew = serializers.BooleanField(required=False, allow_null=True, default=None)


class ExtendReservationSerializer(_Versioned):
    """One of ttl_seconds or until; neither = the pool's TTL from now, clamped to the cap (ADR 1640)."""

    ttl_seconds = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=lifecycle.MAX_RESERVATION_SECONDS,
        help_text="the reservation then runs this long from now",
    )
    until = serializers.DateTimeField(
        required=False, help_text="the new deadline (ISO 8601 with offset); at most 24 h after the first reserve"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("ttl_seconds") is not None and attrs.get("until") is not None:
            raise serializers.ValidationError({"until": ["send either ttl_seconds or until, not both"]})
        return attrs


class AdminAssignSerializer(TenantAssignSerializer):
    tenant_id = serializers.UUIDField()


class AdminReserveSerializer(_Versioned):
    tenant_id = serializers.UUIDField()
    ttl_seconds = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=lifecycle.MAX_RESERVATION_SECONDS,
        help_text="0 or absent = the tenant pool's default",
    )


class ReservationCreateSerializer(serializers.Serializer):
    """Either `number` (one specific number) or `count` (+ criteria): n numbers matching."""

    number = serializers.CharField(required=False, max_length=32, help_text=INPUT_HELP)
    expected_version = serializers.IntegerField(**_VERSION)  # type: ignore[arg-type]
    count = serializers.IntegerField(required=False, min_value=1, max_value=MAX_RESERVE_BATCH)
    kind = serializers.ChoiceField(required=False, choices=Number.Kind.choices)
    issuer = serializers.CharField(required=False, max_length=32)
    prefix = serializers.CharField(required=False, max_length=32)
    pattern = serializers.CharField(required=False, max_length=32)
    vanity_tier = serializers.CharField(required=False, max_length=16)
    vanity = serializers.BooleanField(required=False, allow_null=True, default=None)
    ttl_seconds = serializers.IntegerField(required=False, min_value=0, max_value=lifecycle.MAX_RESERVATION_SECONDS)

    CRITERIA = ("kind", "issuer", "prefix", "pattern", "vanity_tier")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_number, has_count = bool(attrs.get("number")), attrs.get("count") is not None
        if has_number == has_count:
            raise serializers.ValidationError(
                {"number": ["send exactly one of number (one number) or count (n numbers matching criteria)"]}
            )
        if has_number:
            extra = [c for c in (*self.CRITERIA, "vanity") if attrs.get(c) not in (None, "")]
            if extra:
                raise serializers.ValidationError({c: ["criteria apply only with count"] for c in extra})
        elif attrs.get("expected_version"):
            raise serializers.ValidationError({"expected_version": ["applies only to one number"]})
        return attrs


class AutoRenewSerializer(serializers.Serializer):
    auto_renew = serializers.BooleanField()
