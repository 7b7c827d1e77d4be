"""Admin registrations (the full commerce-ops admin builds on these)."""

from __future__ import annotations

from django.contrib import admin

from contracts.models import Contract, InventoryImport, Issuer, NumberBlock, SigningKey


@admin.register(Issuer)
class IssuerAdmin(admin.ModelAdmin):
    list_display = ("id", "code", "name", "kind", "msisdn_prefixes", "created_at")
    show_full_result_count = False


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ("id", "issuer", "public_key_pem", "fingerprint", "valid_from", "valid_to")
    show_full_result_count = False
    raw_id_fields = ("issuer",)


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ("id", "reference", "issuer", "kind", "status", "starts_on")
    show_full_result_count = False
    raw_id_fields = ("issuer",)


@admin.register(InventoryImport)
class InventoryImportAdmin(admin.ModelAdmin):
    list_display = ("id", "issuer", "contract", "filename", "file_sha256", "key_fingerprint")
    show_full_result_count = False
    raw_id_fields = ("issuer", "contract")


@admin.register(NumberBlock)
class NumberBlockAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "issuer", "contract", "kind", "range_start")
    show_full_result_count = False
    raw_id_fields = ("issuer", "contract", "inventory_import")
