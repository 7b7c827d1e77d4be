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
    # The number's MNO contract takes no new reservations or assignments (issue 16, ADR 1610).
    "CONTRACT_SUSPENDED": (409, "FAILED_PRECONDITION"),
    "CONTRACT_TERMINATED": (409, "FAILED_PRECONDITION"),
    "IDEMPOTENCY_KEY_REUSED": (422, "INVALID_ARGUMENT"),
    "VALIDATION_ERROR": (400, "INVALID_ARGUMENT"),
    # Signed inventory imports (issue 5): refused file, key or rows; nothing was imported.
    "IMPORT_REFUSED": (422, "FAILED_PRECONDITION"),
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


class NumberNotFoundError(DomainError):
    code = "NUMBER_NOT_FOUND"


class TenantNotFoundError(DomainError):
    code = "TENANT_NOT_FOUND"


class ConflictError(DomainError):
    code = "CONFLICT"


class NotAvailableError(DomainError):
    code = "NOT_AVAILABLE"


class InvalidTransitionError(DomainError):
    code = "INVALID_TRANSITION"


class ReservationExpiredError(DomainError):
    code = "RESERVATION_EXPIRED"


class WrongTenantError(DomainError):
    code = "WRONG_TENANT"


class TenantNotActiveError(DomainError):
    code = "TENANT_NOT_ACTIVE"


class QuotaExceededError(DomainError):
    code = "QUOTA_EXCEEDED"


class ContractSuspendedError(DomainError):
    """The number's contract is SUSPENDED: no new reservation or assignment (leases go on)."""

    code = "CONTRACT_SUSPENDED"


class ContractTerminatedError(DomainError):
    """The number's contract is TERMINATED: its numbers are being wound down, never handed out."""

    code = "CONTRACT_TERMINATED"


class IdempotencyKeyReusedError(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"


class DomainValidationError(DomainError):
    code = "VALIDATION_ERROR"


class ImportRefusedError(DomainError):
    code = "IMPORT_REFUSED"


class NotFoundError(DomainError):
    """A non-number resource (lease, reservation, contract, ...) that does not exist or is
    not visible to the caller."""

    code = "NOT_FOUND"


class ServiceUnavailableError(DomainError):
    """Both the cache and PostgreSQL failed to answer: retryable (UNAVAILABLE / 503)."""

    code = "SERVICE_UNAVAILABLE"


# Short names used across the code base.
NumberNotFound = NumberNotFoundError
TenantNotFound = TenantNotFoundError
Conflict = ConflictError
NotAvailable = NotAvailableError
InvalidTransition = InvalidTransitionError
ReservationExpired = ReservationExpiredError
WrongTenant = WrongTenantError
TenantNotActive = TenantNotActiveError
QuotaExceeded = QuotaExceededError
ContractSuspended = ContractSuspendedError
ContractTerminated = ContractTerminatedError
IdempotencyKeyReused = IdempotencyKeyReusedError
ValidationError = DomainValidationError
ImportRefused = ImportRefusedError
NotFound = NotFoundError
ServiceUnavailable = ServiceUnavailableError

assert set(ERROR_STATUS) >= {c.code for c in DomainError.__subclasses__()}
