"""What every consumer's pact test shares (issue 17, ADR 1700).

gRPC calls are V4 *synchronous-message* interactions (Pact's gRPC plugin downloads a binary
at run time, which CI cannot do): the request and response contents are the protobuf
messages in canonical JSON (protojson, field names as in the proto), request metadata
`grpc-method` names the RPC, response metadata `grpc-status` its status. A refusal's
contents are the `google.rpc.Status` the server sends, with its `google.rpc.ErrorInfo`.

`PactReplay` plays those interactions back to the consumer's code the way Pact's mock
server does for HTTP: a call must match one interaction's request exactly and gets that
interaction's response, so the consumer test proves its code works against what it pacts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from pact import Pact, match

ROOT = Path(__file__).resolve().parents[3]
PACTS_DIR = ROOT / "pacts"
PROVIDER = "numbering-service"
SERVICE = "numbering.v1.NumberingService"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
ERROR_DOMAIN = "numbering.v1"

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
JWT = r"^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"
# An example bearer token for the pact file only: the provider verification sends a real one.
EXAMPLE_JWT = "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwYWN0In0.c2lnbmF0dXJl"

M = TypeVar("M", bound=Message)


def new_pact(consumer: str) -> Pact:
    return Pact(consumer, PROVIDER).with_specification("V4")


def write(*pacts: Pact) -> None:
    """One file per consumer (`pacts/<consumer>-numbering-service.json`): the first pact
    replaces it, later ones (e.g. a consumer's HTTP and gRPC interactions) merge in."""
    for index, pact in enumerate(pacts):
        pact.write_file(PACTS_DIR, overwrite=index == 0)


def uuid_like(example: str = "3f2a6c1e-8d4b-4c2a-9e7f-1a2b3c4d5e6f") -> Any:
    return match.regex(example, regex=UUID)


def timestamp_like(example: str = "2027-01-01T00:00:00Z") -> Any:
    return match.regex(example, regex=RFC3339)


def protojson(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def grpc_interaction(
    pact: Pact,
    description: str,
    *,
    method: str,
    request: Message,
    given: list[tuple[str, dict[str, Any]]],
    response: dict[str, Any] | None = None,
    refusal: tuple[grpc.StatusCode, str] | None = None,
) -> None:
    """One unary call. `response` is the protojson the consumer relies on (matchers allowed);
    `refusal` is (status, ErrorInfo.reason) for a call the server refuses."""
    interaction = pact.upon_receiving(description, "Sync")
    for state, params in given:
        interaction.given(state, params)
    interaction.with_body(json.dumps(protojson(request)), "application/json")
    interaction.with_metadata({"grpc-method": f"{SERVICE}/{method}"})
    interaction.will_respond_with()
    if refusal is not None:
        code, reason = refusal
        body: dict[str, Any] = {
            "code": code.value[0],
            "message": match.str("why the call was refused"),
            "details": [{"@type": ERROR_INFO_TYPE, "reason": reason, "domain": ERROR_DOMAIN}],
        }
        status = code.name
    else:
        assert response is not None
        body, status = response, "OK"
    interaction.with_body(body, "application/json")
    interaction.with_metadata({"grpc-status": status})


@dataclass
class Refused(Exception):
    """A gRPC refusal as consumers see it: the status and the ErrorInfo reason."""

    code: grpc.StatusCode
    reason: str
    domain: str


@dataclass
class _Recorded:
    description: str
    method: str
    request: dict[str, Any]
    status: str
    response: dict[str, Any]


def _metadata(contents: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in contents.metadata:
        try:
            values[pair.key] = json.loads(pair.value)
        except json.JSONDecodeError:
            values[pair.key] = pair.value
    return values


@dataclass
class PactReplay:
    """A stand-in for the consumer's gRPC stub, answering from the pact's interactions."""

    pact: Pact
    recorded: list[_Recorded] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for message in self.pact.interactions("Sync"):
            request, (response,) = message.request_contents, list(message.response_contents)
            self.recorded.append(
                _Recorded(
                    description=message.description,
                    method=_metadata(request)["grpc-method"],
                    request=json.loads(request.contents),
                    status=_metadata(response)["grpc-status"],
                    response=json.loads(response.contents),
                )
            )

    def call(self, method: str, request: Message, response_type: type[M]) -> M:
        body = protojson(request)
        candidates = [r for r in self.recorded if r.method == f"{SERVICE}/{method}" and r.request == body]
        assert len(candidates) == 1, f"no single pact interaction for {method} {body}"
        (hit,) = candidates
        self.used.add(hit.description)
        if hit.status != "OK":
            status = json_format.ParseDict(hit.response, status_pb2.Status())
            info = error_details_pb2.ErrorInfo()
            assert status.details and status.details[0].Unpack(info)
            raise Refused(grpc.StatusCode[hit.status], info.reason, info.domain)
        # A tolerant reader: fields the consumer does not know are ignored.
        return json_format.ParseDict(hit.response, response_type(), ignore_unknown_fields=True)

    def assert_every_interaction_was_used(self) -> None:
        unused = {r.description for r in self.recorded} - self.used
        assert not unused, f"interactions no consumer code exercised: {sorted(unused)}"


def bearer(value: str = EXAMPLE_JWT) -> Any:
    return match.regex(value, regex=JWT)


def is_uuid(value: str) -> bool:
    return re.fullmatch(UUID, value) is not None
