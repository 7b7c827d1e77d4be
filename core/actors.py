"""Who is acting: recorded in the audit trail and used to scope idempotency keys and RLS."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class ActorKind(StrEnum):
    USER = "user"  # staff: Django admin login or a staff JWT
    TENANT = "tenant"  # a tenant user (JWT with tenant_id)
    SERVICE = "service"  # a platform service, identified by its mTLS certificate CN
    SYSTEM = "system"  # jobs and consumers


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    name: str
    tenant_id: uuid.UUID | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.kind is ActorKind.TENANT and self.tenant_id is None:
            raise ValueError("a tenant actor needs a tenant_id")

    @property
    def identity(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def is_tenant(self) -> bool:
        return self.kind is ActorKind.TENANT

    @classmethod
    def system(cls, job: str = "system") -> Actor:
        return cls(ActorKind.SYSTEM, job)

    @classmethod
    def user(cls, username: str, roles: frozenset[str] = frozenset()) -> Actor:
        return cls(ActorKind.USER, username, roles=roles)

    @classmethod
    def service(cls, cn: str) -> Actor:
        return cls(ActorKind.SERVICE, cn)

    @classmethod
    def tenant(cls, subject: str, tenant_id: uuid.UUID, roles: frozenset[str] = frozenset()) -> Actor:
        return cls(ActorKind.TENANT, subject, tenant_id=tenant_id, roles=roles)
