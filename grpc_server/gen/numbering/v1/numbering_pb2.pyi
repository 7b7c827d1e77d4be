import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NumberKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NUMBER_KIND_UNSPECIFIED: _ClassVar[NumberKind]
    MSISDN: _ClassVar[NumberKind]
    SHORT_CODE: _ClassVar[NumberKind]

class NumberState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NUMBER_STATE_UNSPECIFIED: _ClassVar[NumberState]
    AVAILABLE: _ClassVar[NumberState]
    RESERVED: _ClassVar[NumberState]
    ASSIGNED: _ClassVar[NumberState]
    QUARANTINED: _ClassVar[NumberState]
    RETIRED: _ClassVar[NumberState]
NUMBER_KIND_UNSPECIFIED: NumberKind
MSISDN: NumberKind
SHORT_CODE: NumberKind
NUMBER_STATE_UNSPECIFIED: NumberState
AVAILABLE: NumberState
RESERVED: NumberState
ASSIGNED: NumberState
QUARANTINED: NumberState
RETIRED: NumberState

class Lease(_message.Message):
    __slots__ = ("lease_id", "tenant_id", "starts_at", "expires_at", "auto_renew")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    AUTO_RENEW_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    tenant_id: str
    starts_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    auto_renew: bool
    def __init__(self, lease_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., auto_renew: _Optional[bool] = ...) -> None: ...

class Number(_message.Message):
    __slots__ = ("number", "kind", "state", "operator_code", "vanity", "vanity_tier", "version", "tenant_id", "reserved_until", "quarantine_until", "lease")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_CODE_FIELD_NUMBER: _ClassVar[int]
    VANITY_FIELD_NUMBER: _ClassVar[int]
    VANITY_TIER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    QUARANTINE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    number: str
    kind: NumberKind
    state: NumberState
    operator_code: str
    vanity: bool
    vanity_tier: str
    version: int
    tenant_id: str
    reserved_until: _timestamp_pb2.Timestamp
    quarantine_until: _timestamp_pb2.Timestamp
    lease: Lease
    def __init__(self, number: _Optional[str] = ..., kind: _Optional[_Union[NumberKind, str]] = ..., state: _Optional[_Union[NumberState, str]] = ..., operator_code: _Optional[str] = ..., vanity: _Optional[bool] = ..., vanity_tier: _Optional[str] = ..., version: _Optional[int] = ..., tenant_id: _Optional[str] = ..., reserved_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., quarantine_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lease: _Optional[_Union[Lease, _Mapping]] = ...) -> None: ...

class ValidateLeaseRequest(_message.Message):
    __slots__ = ("number", "tenant_id")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    number: str
    tenant_id: str
    def __init__(self, number: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class ValidateLeaseResponse(_message.Message):
    __slots__ = ("valid", "reason", "lease_id", "expires_at", "kind", "operator_code")
    class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REASON_UNSPECIFIED: _ClassVar[ValidateLeaseResponse.Reason]
        OK: _ClassVar[ValidateLeaseResponse.Reason]
        UNKNOWN_NUMBER: _ClassVar[ValidateLeaseResponse.Reason]
        NOT_ASSIGNED: _ClassVar[ValidateLeaseResponse.Reason]
        WRONG_TENANT: _ClassVar[ValidateLeaseResponse.Reason]
        LEASE_EXPIRED: _ClassVar[ValidateLeaseResponse.Reason]
    REASON_UNSPECIFIED: ValidateLeaseResponse.Reason
    OK: ValidateLeaseResponse.Reason
    UNKNOWN_NUMBER: ValidateLeaseResponse.Reason
    NOT_ASSIGNED: ValidateLeaseResponse.Reason
    WRONG_TENANT: ValidateLeaseResponse.Reason
    LEASE_EXPIRED: ValidateLeaseResponse.Reason
    VALID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_CODE_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    reason: ValidateLeaseResponse.Reason
    lease_id: str
    expires_at: _timestamp_pb2.Timestamp
    kind: NumberKind
    operator_code: str
    def __init__(self, valid: _Optional[bool] = ..., reason: _Optional[_Union[ValidateLeaseResponse.Reason, str]] = ..., lease_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[NumberKind, str]] = ..., operator_code: _Optional[str] = ...) -> None: ...

class LookupRequest(_message.Message):
    __slots__ = ("number",)
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    number: str
    def __init__(self, number: _Optional[str] = ...) -> None: ...

class LookupResponse(_message.Message):
    __slots__ = ("number",)
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    number: Number
    def __init__(self, number: _Optional[_Union[Number, _Mapping]] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("number", "tenant_id", "ttl_seconds", "idempotency_key", "expected_version")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    number: str
    tenant_id: str
    ttl_seconds: int
    idempotency_key: str
    expected_version: int
    def __init__(self, number: _Optional[str] = ..., tenant_id: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("number", "reservation_id", "expires_at")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    number: Number
    reservation_id: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, number: _Optional[_Union[Number, _Mapping]] = ..., reservation_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AssignRequest(_message.Message):
    __slots__ = ("number", "tenant_id", "reservation_id", "lease_days", "auto_renew", "idempotency_key", "expected_version")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_DAYS_FIELD_NUMBER: _ClassVar[int]
    AUTO_RENEW_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    number: str
    tenant_id: str
    reservation_id: str
    lease_days: int
    auto_renew: bool
    idempotency_key: str
    expected_version: int
    def __init__(self, number: _Optional[str] = ..., tenant_id: _Optional[str] = ..., reservation_id: _Optional[str] = ..., lease_days: _Optional[int] = ..., auto_renew: _Optional[bool] = ..., idempotency_key: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class AssignResponse(_message.Message):
    __slots__ = ("number", "lease")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    number: Number
    lease: Lease
    def __init__(self, number: _Optional[_Union[Number, _Mapping]] = ..., lease: _Optional[_Union[Lease, _Mapping]] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("number", "tenant_id", "idempotency_key", "expected_version", "reason")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    number: str
    tenant_id: str
    idempotency_key: str
    expected_version: int
    reason: str
    def __init__(self, number: _Optional[str] = ..., tenant_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("number",)
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    number: Number
    def __init__(self, number: _Optional[_Union[Number, _Mapping]] = ...) -> None: ...

class RecallRequest(_message.Message):
    __slots__ = ("number", "reason", "idempotency_key", "expected_version")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    number: str
    reason: str
    idempotency_key: str
    expected_version: int
    def __init__(self, number: _Optional[str] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class RecallResponse(_message.Message):
    __slots__ = ("number",)
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    number: Number
    def __init__(self, number: _Optional[_Union[Number, _Mapping]] = ...) -> None: ...

class ExtendReservationRequest(_message.Message):
    __slots__ = ("number", "tenant_id", "ttl_seconds", "until", "idempotency_key", "expected_version")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    number: str
    tenant_id: str
    ttl_seconds: int
    until: _timestamp_pb2.Timestamp
    idempotency_key: str
    expected_version: int
    def __init__(self, number: _Optional[str] = ..., tenant_id: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class ExtendReservationResponse(_message.Message):
    __slots__ = ("number", "reservation_id", "expires_at")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    number: Number
    reservation_id: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, number: _Optional[_Union[Number, _Mapping]] = ..., reservation_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ValidateLeaseItemError(_message.Message):
    __slots__ = ("code", "reason", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: str
    reason: str
    message: str
    field: str
    def __init__(self, code: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class ValidateLeasesRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ValidateLeaseRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[ValidateLeaseRequest, _Mapping]]] = ...) -> None: ...

class ValidateLeaseResult(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: ValidateLeaseResponse
    error: ValidateLeaseItemError
    def __init__(self, response: _Optional[_Union[ValidateLeaseResponse, _Mapping]] = ..., error: _Optional[_Union[ValidateLeaseItemError, _Mapping]] = ...) -> None: ...

class ValidateLeasesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ValidateLeaseResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ValidateLeaseResult, _Mapping]]] = ...) -> None: ...

class ValidateLeaseStreamRequest(_message.Message):
    __slots__ = ("correlation_id", "number", "tenant_id", "items")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    correlation_id: str
    number: str
    tenant_id: str
    items: _containers.RepeatedCompositeFieldContainer[ValidateLeaseStreamRequest]
    def __init__(self, correlation_id: _Optional[str] = ..., number: _Optional[str] = ..., tenant_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ValidateLeaseStreamRequest, _Mapping]]] = ...) -> None: ...

class ValidateLeaseStreamResponse(_message.Message):
    __slots__ = ("correlation_id", "response", "error", "answers")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    correlation_id: str
    response: ValidateLeaseResponse
    error: ValidateLeaseItemError
    answers: _containers.RepeatedCompositeFieldContainer[ValidateLeaseStreamResponse]
    def __init__(self, correlation_id: _Optional[str] = ..., response: _Optional[_Union[ValidateLeaseResponse, _Mapping]] = ..., error: _Optional[_Union[ValidateLeaseItemError, _Mapping]] = ..., answers: _Optional[_Iterable[_Union[ValidateLeaseStreamResponse, _Mapping]]] = ...) -> None: ...
