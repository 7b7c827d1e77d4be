"""Placeholder endpoints for features other issues deliver (imports, exports, signing keys).

They authenticate and check the role matrix like any endpoint, then answer 501
problem+json. Replace a stub by pointing its route in config/api/urls.py at the real view.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request

from config.api.errors import NotImplementedYet
from config.api.views import ScopedAPIView


def not_implemented_view(name: str, message: str, keys: dict[str, str], tag: str) -> type[ScopedAPIView]:
    description = f"Not implemented yet: answers 501 problem+json. {message}"

    def make_handler() -> Any:
        def handler(self: Any, request: Request, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedYet(message)

        return handler

    attrs: dict[str, Any] = {
        "permission_keys": keys,
        "parser_classes": [JSONParser, MultiPartParser, FormParser],
        "extra_error_statuses": {"501": "Not implemented yet"},
        "__doc__": description,
    }
    for method in keys:
        op_id = f"{tag.split(': ')[-1]}_{name}_{method}".lower().replace(" ", "_")
        attrs[method] = extend_schema(
            summary=f"{name} (not implemented yet)",
            description=description,
            tags=[tag],
            operation_id=op_id,
            request=None,
            responses={501: None},
        )(make_handler())
    return type(name.replace(" ", ""), (ScopedAPIView,), attrs)
