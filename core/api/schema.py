"""OpenAPI generation: every operation documents its problem+json errors and the bearer scheme."""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from core.api.errors import PROBLEM_CONTENT_TYPE
from core.formats import INPUT_HELP


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True)
    message = serializers.CharField()
    rule = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 7807 problem details with the service's stable error `code`."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField(help_text="stable error code, e.g. NOT_AVAILABLE, VALIDATION_ERROR")
    detail = serializers.CharField(help_text="human message naming the field or rule")
    request_id = serializers.CharField()
    field = serializers.CharField(required=False)
    instance = serializers.CharField(required=False)
    errors = FieldErrorSerializer(many=True, required=False)


ERROR_STATUSES = {
    "400": "Invalid input (every bad field is listed in `errors`)",
    "401": "Missing or invalid bearer token",
    "403": "Your roles do not allow this",
    "404": "Not found (or not visible to your tenant)",
    "405": "Method not allowed",
    "406": "Not acceptable",
    "409": "Conflict with the current state",
    "415": "Unsupported media type",
    "422": "Invalid transition or idempotency key reused",
    "429": "Quota exceeded",
    "500": "Unexpected error",
    "503": "A backing service is unavailable; retry",
}


class ProblemAutoSchema(AutoSchema):
    extra_error_statuses: dict[str, str] = {}

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        problem_ref = self.resolve_serializer(ProblemSerializer, "response").ref
        for status, description in {**ERROR_STATUSES, **getattr(self.view, "extra_error_statuses", {})}.items():
            responses.setdefault(
                status, {"content": {PROBLEM_CONTENT_TYPE: {"schema": problem_ref}}, "description": description}
            )
        return responses


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.auth.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (RS256)"}


# Parameters every app's endpoints share.
IDEMPOTENCY_PARAM = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="retry safely: the same key (per token subject) returns the first response byte for byte; "
    "reused with a different request → 422 IDEMPOTENCY_KEY_REUSED",
)
# No letters: a number never has one, and "numbers/available/" is the search, not a number
# (without the pattern a generated client may take `available` for {number}).
NUMBER_PARAM = OpenApiParameter(
    "number",
    str,
    OpenApiParameter.PATH,
    description=INPUT_HELP,
    pattern=r"^[^/A-Za-z]+$",
)
