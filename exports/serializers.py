"""REST representations of regulator exports (/api/admin/v1/exports/)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from exports.models import RegulatorExport


def export_url(record: RegulatorExport) -> str:
    return reverse("admin-export-detail", args=[record.period])


class RegulatorExportSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    csv_download = serializers.SerializerMethodField(help_text="null until UPLOADED")
    manifest_download = serializers.SerializerMethodField(help_text="null until UPLOADED")

    class Meta:
        model = RegulatorExport
        fields = [
            "id",
            "url",
            "period",
            "status",
            "row_count",
            "sha256",
            "key_id",
            "bucket",
            "csv_key",
            "csv_version_id",
            "manifest_key",
            "manifest_version_id",
            "retain_until",
            "error",
            "attempts",
            "generated_at",
            "uploaded_at",
            "triggered_by",
            "totals",
            "created_at",
            "updated_at",
            "csv_download",
            "manifest_download",
        ]
        read_only_fields = fields

    def get_url(self, obj: RegulatorExport) -> str:
        return export_url(obj)

    def _download(self, obj: RegulatorExport, which: str) -> str | None:
        if obj.status != RegulatorExport.Status.UPLOADED:
            return None
        return f"{reverse('admin-export-download', args=[obj.period])}?file={which}"

    def get_csv_download(self, obj: RegulatorExport) -> str | None:
        return self._download(obj, "csv")

    def get_manifest_download(self, obj: RegulatorExport) -> str | None:
        return self._download(obj, "manifest")


class ExportTriggerSerializer(serializers.Serializer):
    period = serializers.CharField(max_length=7, help_text="a finished month, YYYY-MM (Asia/Kabul)")


class ExportRunSerializer(RegulatorExportSerializer):
    changed = serializers.BooleanField(help_text="false: the period was already uploaded and nothing changed")
    message = serializers.CharField()

    class Meta(RegulatorExportSerializer.Meta):
        fields = [*RegulatorExportSerializer.Meta.fields, "changed", "message"]
        read_only_fields = fields


class ExportVerifySerializer(serializers.Serializer):
    period = serializers.CharField()
    ok = serializers.BooleanField()
    checks = serializers.ListField(child=serializers.CharField())
    problems = serializers.ListField(child=serializers.CharField())
