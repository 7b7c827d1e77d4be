"""REST shapes of the contracts app (/api/admin/v1/issuers, contracts, blocks, imports)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from contracts import selectors
from contracts.models import Contract, InventoryImport, Issuer, NumberBlock, SigningKey


def import_url(pk: int) -> str:
    return reverse("admin-import-detail", args=[pk])


class IssuerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Issuer
        fields = ["id", "code", "name", "kind", "msisdn_prefixes", "created_at", "deactivated_at"]
        read_only_fields = fields


class ContractSerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(source="issuer.code", read_only=True)

    class Meta:
        model = Contract
        fields = [
            "id",
            "reference",
            "issuer",
            "kind",
            "status",
            "starts_on",
            "ends_on",
            "agreed_prefixes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BlockSerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(source="issuer.code", read_only=True)
    contract = serializers.CharField(source="contract.reference", read_only=True, allow_null=True, default=None)

    class Meta:
        model = NumberBlock
        fields = [
            "id",
            "name",
            "issuer",
            "contract",
            "kind",
            "range_start",
            "range_end",
            "inventory_import",
            "created_at",
            "deactivated_at",
        ]
        read_only_fields = fields


class ContractActionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class ContractTerminateSerializer(ContractActionSerializer):
    ends_on = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "the end date (today or later; default today): AVAILABLE and QUARANTINED numbers are retired at once, "
            "RESERVED and ASSIGNED ones recalled on this date; holders are warned 30 and 7 days before"
        ),
    )


class ContractSnapshotSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    issuer = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    starts_on = serializers.DateField(allow_null=True)
    ends_on = serializers.DateField(allow_null=True)
    agreed_prefixes = serializers.ListField(child=serializers.CharField())


class ContractActionResultSerializer(serializers.Serializer):
    contract = ContractSnapshotSerializer()
    reason = serializers.CharField(allow_blank=True)


class SigningKeySerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(source="issuer.code", read_only=True)
    usable = serializers.SerializerMethodField(
        help_text="approved by a second user, started, not expired, not revoked: verifies imports now"
    )
    problem = serializers.SerializerMethodField(help_text="why the key cannot be used now (null when usable)")

    class Meta:
        model = SigningKey
        fields = [
            "id",
            "issuer",
            "fingerprint",
            "public_key_pem",
            "valid_from",
            "valid_to",
            "revoked_at",
            "created_at",
            "created_by",
            "approved_by",
            "approved_at",
            "usable",
            "problem",
        ]
        read_only_fields = fields

    def get_usable(self, obj: SigningKey) -> bool:
        return selectors.signing_key_problem(obj) is None

    def get_problem(self, obj: SigningKey) -> str | None:
        return selectors.signing_key_problem(obj)


class SigningKeyAddSerializer(serializers.Serializer):
    public_key_pem = serializers.CharField(
        max_length=20000, trim_whitespace=False, help_text="RSA ≥ 2048 bits, PEM SubjectPublicKeyInfo"
    )
    valid_from = serializers.DateTimeField(
        required=False, help_text="ISO 8601 with offset; default now; not in the past beyond the clock skew"
    )
    valid_to = serializers.DateTimeField(
        required=False, allow_null=True, help_text="ISO 8601; default and maximum valid_from + the lifetime cap"
    )


class SigningKeyRevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class ImportSerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(source="issuer.code", read_only=True)
    contract = serializers.CharField(source="contract.reference", read_only=True, allow_null=True, default=None)
    progress_percent = serializers.SerializerMethodField(help_text="processed_rows / total_rows, 0-100")
    url = serializers.SerializerMethodField()

    class Meta:
        model = InventoryImport
        fields = [
            "id",
            "url",
            "issuer",
            "contract",
            "filename",
            "file_sha256",
            "key_fingerprint",
            "mode",
            "status",
            "total_rows",
            "processed_rows",
            "progress_percent",
            "accepted_count",
            "rejected_count",
            "duplicate_count",
            "error",
            "created_by",
            "created_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_progress_percent(self, obj: InventoryImport) -> float:
        if not obj.total_rows:
            return 100.0 if obj.completed_at else 0.0
        return round(min(100.0, 100.0 * obj.processed_rows / obj.total_rows), 1)

    def get_url(self, obj: InventoryImport) -> str:
        return import_url(obj.pk)


class ImportRowSerializer(serializers.Serializer):
    row = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["invalid", "duplicate"])
    value = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class ImportDetailSerializer(ImportSerializer):
    report = ImportRowSerializer(
        many=True,
        read_only=True,
        help_text="the problem rows (invalid vs duplicate), first INVENTORY_IMPORT_REPORT_LIMIT; counts are exact",
    )

    class Meta(ImportSerializer.Meta):
        fields = [*ImportSerializer.Meta.fields, "report"]
        read_only_fields = fields


class ImportOutcomeSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="what this run did; a dry run says what a real run would do")
    message = serializers.CharField()
    committed = serializers.BooleanField()
    noop = serializers.BooleanField(help_text="the same file was already imported: nothing changed")
    dry_run = serializers.BooleanField()
    ok = serializers.BooleanField()


class ImportAcceptedSerializer(ImportDetailSerializer):
    outcome = ImportOutcomeSerializer(
        read_only=True, allow_null=True, help_text="the run's result (null while it is queued to the worker)"
    )

    class Meta(ImportDetailSerializer.Meta):
        fields = [*ImportDetailSerializer.Meta.fields, "outcome"]
        read_only_fields = fields


class ImportCreateSerializer(serializers.Serializer):
    issuer = serializers.CharField(max_length=64, help_text="issuer code, e.g. ROSHAN")
    csv = serializers.FileField(help_text="the CSV exactly as the issuer signed it (docs/import-csv-format.md)")
    signature = serializers.FileField(help_text="detached RSA-PSS or PKCS#1 v1.5 SHA-256 signature over the CSV bytes")
    mode = serializers.ChoiceField(choices=InventoryImport.Mode.choices, default=InventoryImport.Mode.ALL_OR_NOTHING)
    dry_run = serializers.BooleanField(default=False, help_text="verify and validate only; import nothing")


def key_body(key: SigningKey) -> dict[str, Any]:
    return dict(SigningKeySerializer(key).data)


def import_body(imp: InventoryImport, outcome: Any = None) -> dict[str, Any]:
    """The 202 body of an upload: the import, and the run's outcome (None while it is queued)."""
    body: dict[str, Any] = {**ImportDetailSerializer(imp).data, "outcome": None}
    if outcome is not None:
        body["outcome"] = {
            "status": outcome.status,
            "message": outcome.message,
            "committed": outcome.committed,
            "noop": outcome.noop,
            "dry_run": outcome.dry_run,
            "ok": outcome.ok,
        }
    return body


# --- writes (issue 16, ADR 1620): the settable fields; the services decide the rest ----------


class IssuerWriteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Issuer
        fields = ["code", "name", "kind", "msisdn_prefixes"]


class ContractWriteSerializer(serializers.ModelSerializer):
    issuer = serializers.SlugRelatedField(slug_field="code", queryset=Issuer.objects.all(), help_text="issuer code")

    class Meta:
        model = Contract
        fields = ["reference", "issuer", "kind", "status", "starts_on", "ends_on", "agreed_prefixes"]


class BlockWriteSerializer(serializers.ModelSerializer):
    issuer = serializers.SlugRelatedField(slug_field="code", queryset=Issuer.objects.all(), help_text="issuer code")
    contract = serializers.SlugRelatedField(
        slug_field="reference",
        queryset=Contract.objects.all(),
        allow_null=True,
        required=False,
        help_text="contract reference",
    )

    class Meta:
        model = NumberBlock
        fields = ["name", "issuer", "contract", "kind", "range_start", "range_end"]
        validators: list[Any] = []  # (issuer, name) uniqueness: the service's full_clean names the field
