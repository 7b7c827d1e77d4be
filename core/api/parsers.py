"""The JSON parser every endpoint uses: a deeply nested body is a 400, not a RecursionError
(issue 13 item 9). The body size limit is Django's DATA_UPLOAD_MAX_MEMORY_SIZE; going over
it is answered 413 by core.api.errors."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply") from None
