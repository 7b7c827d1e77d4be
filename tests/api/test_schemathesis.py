"""Property-based fuzzing of the live OpenAPI schema (schemathesis, in-process over WSGI).

Every operation gets a bounded number of generated requests with a valid token for its
surface; no answer may be a 5xx, and every answer must match the schema (documented
status, content type and body). The exports operations reach the private moto S3 server
(`worm_bucket`), so a generated request that triggers or downloads an export talks to a
real S3 API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from numbering.lifecycle import State
from tests.api.conftest import make_token
from tests.numbering.helpers import number_in

MAX_EXAMPLES = 6


# Loaded at import (collection): generating the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def tokens(alice: Any, worm_bucket: str) -> Iterator[dict[str, str]]:
    number_in(State.ASSIGNED, alice)
    number_in(State.AVAILABLE, None)
    # As Django's test client does: a WSGI request must not close the connection that holds
    # the test transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield {"/api/admin/": make_token("numbering.admin"), "/api/tenant/": make_token("tenant.admin", alice)}
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_5xx_and_matches_its_schema(case: Any, tokens: dict[str, str]) -> None:
    token = next(tok for prefix, tok in tokens.items() if case.path.startswith(prefix))
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
