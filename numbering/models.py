"""The number inventory and what hangs off it.

`Number` is the row every compare-and-set runs on (numbering/cas.py); nothing else in the
code base writes its state, tenant, version or timers.
"""

from __future__ import annotations

import uuid

from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Now

from core.formats import MSISDN_STORED_SQL, SHORT_CODE_STORED_SQL
from numbering.lifecycle import State

# The vanity tiers seeded by migration 0009 (ATRA's vanity list names one per code). The
# tiers themselves are data (VanityTier, ADR 1650): this tuple is only the seed and the demo.
VANITY_TIERS = ("PLATINUM", "GOLD", "SILVER", "BRONZE")
CURRENCY = "AFN"
TIER_CODE_RULE = r"^[A-Z][A-Z0-9_]{0,15}$"


class Number(models.Model):
    class Kind(models.TextChoices):
        MSISDN = "MSISDN"
        SHORT_CODE = "SHORT_CODE"

    # COLLATE "C" (ADR 1120): byte order, so a prefix is one index range whatever the
    # database's collation, and the range's comparisons are leakproof (usable under RLS).
    number = models.CharField(
        max_length=16, unique=True, db_collation="C", help_text="E.164 for MSISDNs, digits for short codes"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    issuer = models.ForeignKey("contracts.Issuer", on_delete=models.PROTECT, related_name="numbers")
    block = models.ForeignKey(
        "contracts.NumberBlock", on_delete=models.PROTECT, null=True, blank=True, related_name="numbers"
    )
    pool = models.ForeignKey(
        "pools.InventoryPool", on_delete=models.PROTECT, null=True, blank=True, related_name="numbers"
    )
    vanity = models.BooleanField(default=False)
    vanity_tier = models.CharField(max_length=16, blank=True)
    is_test = models.BooleanField(default=False, help_text="test numbers have no quarantine cool-off")
    state = models.CharField(max_length=16, choices=[(s.value, s.value) for s in State], default=State.AVAILABLE)
    tenant = models.ForeignKey(
        "pools.Tenant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="numbers",
        help_text="current holder (RESERVED/ASSIGNED)",
    )
    last_tenant = models.ForeignKey(
        "pools.Tenant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="the holder before the number last left RESERVED/ASSIGNED",
    )
    version = models.BigIntegerField(default=1)
    reserved_until = models.DateTimeField(null=True, blank=True)
    quarantine_until = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(auto_now_add=True)
    last_disconnected_at = models.DateTimeField(null=True, blank=True)
    burned_at = models.DateTimeField(null=True, blank=True, help_text="recalled for fraud")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        indexes = [
            # Inventory search and reserve-by-criteria: state + kind + issuer.
            models.Index(fields=["state", "kind", "issuer"], name="number_state_kind_issuer"),
            models.Index(fields=["pool", "state"], name="number_pool_state"),
            # Tenant search and reserve-by-criteria at scale (ADR 1120): AVAILABLE rows in
            # number order, alone or after kind / vanity tier, so a page is an index range.
            models.Index(fields=["number"], name="number_available", condition=models.Q(state="AVAILABLE")),
            models.Index(
                fields=["kind", "number"], name="number_available_kind", condition=models.Q(state="AVAILABLE")
            ),
            models.Index(
                fields=["vanity_tier", "number"],
                name="number_available_tier",
                condition=models.Q(state="AVAILABLE"),
            ),
            models.Index(fields=["tenant", "state"], name="number_tenant_state"),
            # Reservation safety net: RESERVED rows by deadline.
            models.Index(
                fields=["reserved_until"],
                name="number_reserved_until",
                condition=models.Q(state="RESERVED"),
            ),
            # Quarantine sweep: QUARANTINED rows by deadline.
            models.Index(
                fields=["quarantine_until"],
                name="number_quarantine_until",
                condition=models.Q(state="QUARANTINED"),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=[s.value for s in State]), name="number_state_valid"),
            # A holder exactly when RESERVED or ASSIGNED.
            models.CheckConstraint(
                condition=(
                    models.Q(state__in=["RESERVED", "ASSIGNED"], tenant__isnull=False)
                    | (~models.Q(state__in=["RESERVED", "ASSIGNED"]) & models.Q(tenant__isnull=True))
                ),
                name="number_holder_iff_held",
            ),
            models.CheckConstraint(
                condition=~models.Q(state="RESERVED") | models.Q(reserved_until__isnull=False),
                name="number_reserved_has_deadline",
            ),
            models.CheckConstraint(
                condition=~models.Q(state="QUARANTINED") | models.Q(quarantine_until__isnull=False),
                name="number_quarantined_has_deadline",
            ),
            # The last line behind core.formats (issue 16, ADR 1600): ASCII only, so a Persian or
            # Arabic-Indic digit can never make a second "number" beside the ASCII one.
            # Added NOT VALID, then validated (numbering 0009).
            models.CheckConstraint(
                condition=models.Q(kind="MSISDN", number__regex=MSISDN_STORED_SQL)
                | models.Q(kind="SHORT_CODE", number__regex=SHORT_CODE_STORED_SQL),
                name="number_ascii_msisdn_or_short_code",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class Reservation(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        CONVERTED = "CONVERTED"
        CANCELLED = "CANCELLED"
        EXPIRED = "EXPIRED"
        RECALLED = "RECALLED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.ForeignKey(Number, on_delete=models.PROTECT, related_name="reservations")
    tenant = models.ForeignKey("pools.Tenant", on_delete=models.PROTECT, related_name="reservations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200)
    # The vanity tier's price in force when this row was made (ADR 1650); empty for
    # standard numbers and for rows of the release before tiers had prices.
    tier_code = models.CharField(max_length=16, null=True, blank=True)
    monthly_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    setup_fee = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "status"], name="reservation_tenant_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["number"], condition=models.Q(status="ACTIVE"), name="one_active_reservation_per_number"
            )
        ]


class Lease(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        RELEASED = "RELEASED"
        EXPIRED = "EXPIRED"
        RECALLED = "RECALLED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.ForeignKey(Number, on_delete=models.PROTECT, related_name="leases")
    tenant = models.ForeignKey("pools.Tenant", on_delete=models.PROTECT, related_name="leases")
    reservation = models.ForeignKey(Reservation, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    term_days = models.PositiveIntegerField()
    auto_renew = models.BooleanField(default=True)
    renewals = models.PositiveIntegerField(default=0)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=64, blank=True)
    created_by = models.CharField(max_length=200)
    # The vanity tier's price in force when this row was made (ADR 1650); empty for
    # standard numbers and for rows of the release before tiers had prices.
    tier_code = models.CharField(max_length=16, null=True, blank=True)
    monthly_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    setup_fee = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        indexes = [
            models.Index(fields=["tenant", "status"], name="lease_tenant_status"),
            models.Index(fields=["expires_at"], name="lease_active_expiry", condition=models.Q(status="ACTIVE")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["number"], condition=models.Q(status="ACTIVE"), name="one_active_lease_per_number"
            )
        ]


class QuarantinePolicy(models.Model):
    """Cool-off days per case; Legal approves every change (and every change is audited)."""

    class Case(models.TextChoices):
        MSISDN = "MSISDN", "MSISDN released / expired / recalled"
        SHORT_CODE = "SHORT_CODE", "Standard short code released / expired / recalled"
        VANITY = "VANITY", "Vanity short code, any end"
        COMPLIANCE = "COMPLIANCE", "Compliance recall (suspension, deletion, fraud)"
        TEST = "TEST", "Test numbers"
        ASSIGNED_IN_ERROR = "ASSIGNED_IN_ERROR", "Ops release with reason ASSIGNED_IN_ERROR"

    case = models.CharField(max_length=32, choices=Case.choices, unique=True)
    days = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    approved_by = models.CharField(max_length=150, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["case"]
        verbose_name_plural = "quarantine policies"

    def __str__(self) -> str:
        return f"{self.case}: {self.days} days"


class AnomalySignal(models.Model):
    """A fraud signal already raised for (kind, subject, window): the detector raises each once."""

    kind = models.CharField(max_length=32)
    subject = models.CharField(max_length=128, help_text="tenant id the signal is about")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-window_start"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject", "window_start"], name="anomaly_signal_once_per_window")
        ]


class LeaseCacheEpoch(models.Model):
    """The one row naming this database's lease-cache epoch (ADR 1200).

    Random at creation, so two databases never share one; replaced by `manage.py
    bump_cache_epoch` after a restore, so a cache written for the old history is never read
    as current. Redis entries and heartbeats carry it; workers trust only their own."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    epoch = models.CharField(max_length=64)
    bumped_at = models.DateTimeField(auto_now=True)
    reason = models.CharField(max_length=200, blank=True)


class LeaseCacheChange(models.Model):
    """A number whose lease-cache entry must be rewritten (ADR 1200). Written by database
    triggers on numbers and leases in the committing transaction (so no code path can skip
    it); drained by `run_cache_sync`, which deletes a row only after Redis took the write."""

    id = models.BigAutoField(primary_key=True)
    number_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


# --- vanity tiers and their prices (issue 16 part 6, ADR 1650) ------------------------------


class VanityTier(models.Model):
    """A price tier of vanity short codes, keyed by the code numbers carry in `vanity_tier`.

    Never deleted (reservations, leases and events name it); retired with is_active=False.
    Its price is not a column here: the price in force at a moment is the latest approved
    TierPriceChange whose effective_from has come (numbering.selectors.tier_price_in_force)."""

    code = models.CharField(
        max_length=16,
        primary_key=True,
        validators=[RegexValidator(TIER_CODE_RULE, "an upper-case letter, then up to 15 of A-Z, 0-9, _")],
        help_text="as numbers and import files carry it, e.g. GOLD",
    )
    name = models.CharField(max_length=64)
    currency = models.CharField(max_length=3, default=CURRENCY, db_default=CURRENCY, editable=False)
    is_active = models.BooleanField(default=True, db_default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=models.Q(currency=CURRENCY), name="vanity_tier_currency_afn"),
            models.CheckConstraint(condition=models.Q(code__regex=TIER_CODE_RULE), name="vanity_tier_code"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class TierPriceChange(models.Model):
    """A proposed monthly price + setup fee for a tier: proposed by commerce, in force only
    once a second, different staff user approved it, from effective_from on (four eyes,
    core.authz.require_second_pair_of_eyes). Approved rows are the tier's price history."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        APPROVED = "APPROVED"
        REJECTED = "REJECTED"

    id = models.BigAutoField(primary_key=True)
    tier = models.ForeignKey(VanityTier, on_delete=models.PROTECT, related_name="price_changes")
    monthly_price = models.DecimalField(max_digits=12, decimal_places=2, help_text="AFN per month")
    setup_fee = models.DecimalField(max_digits=12, decimal_places=2, help_text="AFN, once per assignment")
    currency = models.CharField(max_length=3, default=CURRENCY, db_default=CURRENCY, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    effective_from = models.DateTimeField(
        null=True, blank=True, help_text="empty while pending = in force from the approval on"
    )
    reason = models.CharField(max_length=500, blank=True)
    proposed_by = models.CharField(max_length=200)
    proposed_at = models.DateTimeField(db_default=Now())
    decided_by = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The price in force: the latest approved change of a tier that has taken effect.
            models.Index(
                fields=["tier", "-effective_from", "-id"],
                name="tier_price_in_force",
                condition=models.Q(status="APPROVED"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(monthly_price__gte=0, setup_fee__gte=0), name="tier_price_not_negative"
            ),
            models.CheckConstraint(condition=models.Q(currency=CURRENCY), name="tier_price_currency_afn"),
            models.CheckConstraint(
                condition=~models.Q(status="APPROVED")
                | models.Q(effective_from__isnull=False, decided_at__isnull=False),
                name="tier_price_approved_has_dates",
            ),
            # One open proposal per tier: a second one would race the first for approval.
            models.UniqueConstraint(
                fields=["tier"], condition=models.Q(status="PENDING"), name="one_pending_price_change_per_tier"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tier_id} {self.monthly_price} {self.currency}/month ({self.status})"
