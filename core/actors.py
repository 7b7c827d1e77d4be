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
        if self.tenant_id is not None and self.kind not in (ActorKind.TENANT, ActorKind.SERVICE):
            raise ValueError(f"a {self.kind} actor does not act for a tenant")

    @property
    def identity(self) -> str:
        """Audit actor and idempotency scope. Whoever acts for a tenant is scoped by tenant and
        subject, so one subject acting for two tenants never shares keys (issue 13 item 7)."""
        if self.kind is ActorKind.TENANT:
            return f"tenant:{self.tenant_id}:{self.name}"
        if self.tenant_id is not None:
            return f"{self.kind}:{self.name}:tenant:{self.tenant_id}"
        return f"{self.kind}:{self.name}"

    @property
    def is_tenant(self) -> bool:
        return self.kind is ActorKind.TENANT

    @property
    def acts_for_tenant(self) -> bool:
        """A tenant user, or a service bound to one tenant (a tenant-acting gRPC CN)."""
        return self.tenant_id is not None

    @classmethod
    def system(cls, job: str = "system") -> Actor:
        return cls(ActorKind.SYSTEM, job)

    @classmethod
    def user(cls, username: str, roles: frozenset[str] = frozenset()) -> Actor:
        return cls(ActorKind.USER, username, roles=roles)

    @classmethod
    def service(cls, cn: str, tenant_id: uuid.UUID | None = None) -> Actor:
        """A platform service; with tenant_id, one acting for that tenant only."""
        return cls(ActorKind.SERVICE, cn, tenant_id=tenant_id)

    @classmethod
    def tenant(cls, subject: str, tenant_id: uuid.UUID, roles: frozenset[str] = frozenset()) -> Actor:
        return cls(ActorKind.TENANT, subject, tenant_id=tenant_id, roles=roles)
