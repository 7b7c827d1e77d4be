"""Tenants (a local mirror), inventory pools and tenants' entitlements to them."""

from __future__ import annotations

import uuid

from django.db import models


class Tenant(models.Model):
    class Segment(models.TextChoices):
        ENTERPRISE = "ENTERPRISE"
        SMB = "SMB"
        GOVERNMENT = "GOVERNMENT"

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        SUSPENDED = "SUSPENDED"
        DELETED = "DELETED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    registration_no = models.CharField(max_length=64, unique=True)
    segment = models.CharField(max_length=16, choices=Segment.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class InventoryPool(models.Model):
    """A partition of inventory: general MSISDN, standard/vanity short codes, government."""

    class Kind(models.TextChoices):
        MSISDN = "MSISDN"
        SHORT_CODE = "SHORT_CODE"

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    vanity = models.BooleanField(default=False)
    government_reserved = models.BooleanField(default=False)
    low_watermark = models.PositiveIntegerField(default=100, help_text="warn below this many AVAILABLE")
    critical_watermark = models.PositiveIntegerField(default=10, help_text="critical below this many AVAILABLE")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Never deleted (issue 16, ADR 1620): deactivated, audited, and refused where it is used.
    deactivated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class TenantPool(models.Model):
    """A tenant's entitlement: which inventory pools it draws from and how much."""

    tenant = models.OneToOneField(Tenant, on_delete=models.PROTECT, related_name="tenant_pool")
    inventory_pools = models.ManyToManyField(InventoryPool, related_name="tenant_pools", blank=True)
    quota_msisdn = models.PositiveIntegerField(default=10)
    quota_short_code = models.PositiveIntegerField(default=0)
    default_lease_days = models.PositiveIntegerField(default=30)
    auto_renew_default = models.BooleanField(default=True)
    reservation_ttl_seconds = models.PositiveIntegerField(default=900)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Never deleted (issue 16, ADR 1620): deactivated, audited, and refused where it is used.
    deactivated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["tenant_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reservation_ttl_seconds__gte=1, reservation_ttl_seconds__lte=86400),
                name="tenant_pool_ttl_1s_to_24h",
            ),
            models.CheckConstraint(condition=models.Q(default_lease_days__gte=1), name="tenant_pool_lease_days_min_1"),
        ]

    def __str__(self) -> str:
        return f"pool of {self.tenant_id}"

    def quota_for(self, kind: str) -> int:
        return self.quota_msisdn if kind == InventoryPool.Kind.MSISDN else self.quota_short_code


class PoolWatermarkState(models.Model):
    """The last availability level seen per pool: an exhaustion event fires once per crossing."""

    class Level(models.TextChoices):
        OK = "OK"
        LOW = "LOW"
        CRITICAL = "CRITICAL"
        EXHAUSTED = "EXHAUSTED"

    pool = models.OneToOneField(InventoryPool, on_delete=models.CASCADE, related_name="watermark_state")
    level = models.CharField(max_length=16, choices=Level.choices, default=Level.OK)
    available = models.PositiveIntegerField(default=0)
    changed_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
