"""Regulator exports (filled in by the export pipeline)."""

from __future__ import annotations

from django.db import models


class RegulatorExport(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        UPLOADED = "UPLOADED"
        FAILED = "FAILED"

    period = models.CharField(max_length=7, unique=True, help_text="YYYY-MM")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    row_count = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    signature = models.TextField(blank=True)
    key_id = models.CharField(max_length=200, blank=True)
    bucket = models.CharField(max_length=200, blank=True)
    csv_key = models.CharField(max_length=500, blank=True)
    csv_version_id = models.CharField(max_length=200, blank=True)
    manifest_key = models.CharField(max_length=500, blank=True)
    manifest_version_id = models.CharField(max_length=200, blank=True)
    retain_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    generated_at = models.DateTimeField(null=True, blank=True, help_text="when the rows were read")
    uploaded_at = models.DateTimeField(null=True, blank=True, help_text="when both objects were confirmed locked")
    triggered_by = models.CharField(max_length=200, blank=True, help_text="actor of the run that uploaded")
    totals = models.JSONField(default=list, blank=True, help_text="utilisation per issuer x kind x block")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period"]

    def __str__(self) -> str:
        return f"export {self.period} ({self.status})"
