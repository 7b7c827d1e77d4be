"""Issuers (the five MNOs and ATRA), their signing keys, contracts, blocks and imports."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class Issuer(models.Model):
    class Kind(models.TextChoices):
        MNO = "MNO", "Mobile network operator"
        REGULATOR = "REGULATOR", "Regulator"

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Two-digit national prefixes after +93, e.g. ["79", "72"] for Roshan. Empty for ATRA.
    msisdn_prefixes = ArrayField(models.CharField(max_length=4), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Never deleted (issue 16, ADR 1620): deactivated, audited, and refused where it is used.
    deactivated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class SigningKey(models.Model):
    """An issuer's public key; several per issuer so keys can rotate without a gap."""

    issuer = models.ForeignKey(Issuer, on_delete=models.PROTECT, related_name="signing_keys")
    public_key_pem = models.TextField()
    fingerprint = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the DER public key")
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Four eyes (ADR 1350): who installed the key, and the different staff user who approved
    # it. Imports verify only with approved keys.
    # db_default: the previous release inserts keys without these columns (ADR 1803).
    created_by = models.CharField(max_length=200, blank=True, default="", db_default="")
    approved_by = models.CharField(max_length=200, blank=True, default="", db_default="")
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["issuer_id", "-valid_from"]

    def __str__(self) -> str:
        return f"{self.issuer_id}:{self.fingerprint[:16]}"


class Contract(models.Model):
    class Kind(models.TextChoices):
        MOU = "MOU", "MNO memorandum of understanding"
        ALLOCATION = "ALLOCATION", "Regulator allocation"

    class Status(models.TextChoices):
        DRAFT = "DRAFT"
        ACTIVE = "ACTIVE"
        SUSPENDED = "SUSPENDED"
        TERMINATED = "TERMINATED"

    reference = models.CharField(max_length=64, unique=True)
    issuer = models.ForeignKey(Issuer, on_delete=models.PROTECT, related_name="contracts")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MOU)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    agreed_prefixes = ArrayField(models.CharField(max_length=4), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["reference"]

    def __str__(self) -> str:
        return self.reference


class InventoryImport(models.Model):
    """One signed CSV import, with its per-row report."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        VERIFIED = "VERIFIED"
        RUNNING = "RUNNING"
        COMMITTED = "COMMITTED"
        REJECTED = "REJECTED"
        FAILED = "FAILED"
        # The same file was committed earlier; this upload changed nothing (DESIGN §7).
        ALREADY_IMPORTED = "ALREADY_IMPORTED"

    class Mode(models.TextChoices):
        ALL_OR_NOTHING = "all-or-nothing"
        VALID_ROWS = "valid-rows"

    issuer = models.ForeignKey(Issuer, on_delete=models.PROTECT, related_name="imports")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, null=True, blank=True, related_name="imports")
    filename = models.CharField(max_length=255, blank=True)
    file_sha256 = models.CharField(max_length=64)
    key_fingerprint = models.CharField(max_length=64, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ALL_OR_NOTHING)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    accepted_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=list, blank=True, help_text="per-row results")
    error = models.TextField(blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # When the stored CSV and signature were deleted after their retention (issue 13 item 10,
    # ADR 1354); the record, its SHA-256, outcome and report are kept.
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The same file committed twice is a no-op: at most one committed import per hash.
            models.UniqueConstraint(
                fields=["issuer", "file_sha256"],
                condition=models.Q(status="COMMITTED"),
                name="import_committed_once_per_file",
            )
        ]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.issuer_id}, {self.status})"


class NumberBlock(models.Model):
    """A range or an imported batch of numbers under a contract."""

    class Kind(models.TextChoices):
        MSISDN = "MSISDN"
        SHORT_CODE = "SHORT_CODE"

    name = models.CharField(max_length=128)
    issuer = models.ForeignKey(Issuer, on_delete=models.PROTECT, related_name="blocks")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="blocks", null=True, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    range_start = models.CharField(max_length=16, blank=True)
    range_end = models.CharField(max_length=16, blank=True)
    inventory_import = models.ForeignKey(
        InventoryImport, on_delete=models.PROTECT, null=True, blank=True, related_name="blocks"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Never deleted (issue 16, ADR 1620): deactivated, audited, and refused where it is used.
    deactivated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["issuer_id", "name"]
        constraints = [models.UniqueConstraint(fields=["issuer", "name"], name="block_name_unique_per_issuer")]

    def __str__(self) -> str:
        return self.name


class ContractEndingNotice(models.Model):
    """A warning already sent to a tenant that a terminated contract's end date is near
    (numbering.contract.ending.v1, 30 and 7 days before; ADR 1611). The unique constraint
    makes each (contract, tenant, threshold, end date) warning go out exactly once, however
    often and however concurrently the job runs; a moved end date warns again."""

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="ending_notices")
    tenant = models.ForeignKey("pools.Tenant", on_delete=models.PROTECT, related_name="+")
    days_before = models.PositiveSmallIntegerField()
    ends_on = models.DateField()
    numbers = models.PositiveIntegerField(help_text="the tenant's RESERVED/ASSIGNED numbers when warned")
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["contract_id", "-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "tenant", "days_before", "ends_on"], name="contract_ending_notice_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.contract_id} → {self.tenant_id}: {self.days_before} days before {self.ends_on}"
