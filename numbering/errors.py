"""Domain errors: plain exceptions with a stable `code`.

ERROR_STATUS is the one table mapping a code to its HTTP and gRPC status (DESIGN §2.2);
the DRF exception handler and the gRPC interceptor both read it.
"""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, gRPC status name)
ERROR_STATUS: dict[str, tuple[int, str]] = {
    "NUMBER_NOT_FOUND": (404, "NOT_FOUND"),
    "TENANT_NOT_FOUND": (404, "NOT_FOUND"),
    "NOT_FOUND": (404, "NOT_FOUND"),
    "CONFLICT": (409, "ABORTED"),
    "NOT_AVAILABLE": (409, "FAILED_PRECONDITION"),
    "INVALID_TRANSITION": (422, "FAILED_PRECONDITION"),
    "RESERVATION_EXPIRED": (409, "FAILED_PRECONDITION"),
    "WRONG_TENANT": (403, "PERMISSION_DENIED"),
    "TENANT_NOT_ACTIVE": (409, "FAILED_PRECONDITION"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED"),
    "IDEMPOTENCY_KEY_REUSED": (422, "INVALID_ARGUMENT"),
    "VALIDATION_ERROR": (400, "INVALID_ARGUMENT"),
    # Both the cache and PostgreSQL failed to answer (ValidateLease, issue 3): retryable.
    "SERVICE_UNAVAILABLE": (503, "UNAVAILABLE"),
}


class DomainError(Exception):
    code = "DOMAIN_ERROR"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    @property
    def http_status(self) -> int:
        return ERROR_STATUS[self.code][0]

    @property
    def grpc_status(self) -> str:
        return ERROR_STATUS[self.code][1]

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            data["field"] = self.field
        return data


def _error(code: str) -> type[DomainError]:
    return type(code.title().replace("_", "") + "Error", (DomainError,), {"code": code})


NumberNotFound = _error("NUMBER_NOT_FOUND")
TenantNotFound = _error("TENANT_NOT_FOUND")
Conflict = _error("CONFLICT")
NotAvailable = _error("NOT_AVAILABLE")
InvalidTransition = _error("INVALID_TRANSITION")
ReservationExpired = _error("RESERVATION_EXPIRED")
WrongTenant = _error("WRONG_TENANT")
TenantNotActive = _error("TENANT_NOT_ACTIVE")
QuotaExceeded = _error("QUOTA_EXCEEDED")
IdempotencyKeyReused = _error("IDEMPOTENCY_KEY_REUSED")
ValidationError = _error("VALIDATION_ERROR")
ServiceUnavailable = _error("SERVICE_UNAVAILABLE")

assert set(ERROR_STATUS) >= {c.code for c in DomainError.__subclasses__()}
