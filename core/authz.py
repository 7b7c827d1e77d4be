"""Authorization: who may do what, on every surface, in one module (DESIGN §3.1, §3.2, §3.3).

- the roles (JWT `roles` claims and Django staff groups use the same names);
- MATRIX: the REST role × endpoint/action table (core.api.permissions.RolePermission reads it;
  tests/api/test_role_matrix.py walks every route × role against it);
- ADMIN_ACTIONS: the Django admin's number actions, each mapped to its MATRIX key, so the
  admin grants exactly what REST grants;
- STAFF_GRANTS: the Django model permissions each staff group gets (ensure_staff_groups);
- GRPC_DEFAULT_PERMISSIONS: which client certificate CN may call which gRPC method, and
  whether it acts for a tenant or as the platform;
- require_platform(): the one check a service makes before a staff/platform-only action.

To add an endpoint or action: add its key here with the roles allowed, and name the key at
the adapter (`permission_keys` on a view, ADMIN_ACTIONS for an admin action).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

from core import errors
from core.actors import Actor

# --- roles ------------------------------------------------------------------------------
NUMBERING_ADMIN = "numbering.admin"
COMMERCE_OPS = "commerce.ops"
COMPLIANCE_OFFICER = "compliance.officer"
AUDITOR = "auditor"
REGULATOR_EXPORTER = "regulator.exporter"
# Installs, approves and revokes issuers' import signing keys (the trust anchors of imports),
# kept apart from the roles that run imports (issue 13 item 2, ADR 1350).
KEY_MANAGER = "key.manager"
TENANT_ADMIN = "tenant.admin"
TENANT_VIEWER = "tenant.viewer"
# A machine role (client-credentials token of regulator-portal-service, issue 17): reads
# regulator exports and nothing else; no Django staff group, never a tenant.
REGULATOR_PORTAL = "regulator.portal"

STAFF_ROLES = (NUMBERING_ADMIN, COMMERCE_OPS, COMPLIANCE_OFFICER, AUDITOR, REGULATOR_EXPORTER, KEY_MANAGER)
SERVICE_ROLES = (REGULATOR_PORTAL,)
TENANT_ROLES = (TENANT_ADMIN, TENANT_VIEWER)
PLATFORM_ROLES = STAFF_ROLES + SERVICE_ROLES  # the roles a token without tenant_id may carry
ALL_ROLES = PLATFORM_ROLES + TENANT_ROLES


# --- REST: role × endpoint/action -------------------------------------------------------
_A, _O, _C, _AU, _R = NUMBERING_ADMIN, COMMERCE_OPS, COMPLIANCE_OFFICER, AUDITOR, REGULATOR_EXPORTER
_TA, _TV = TENANT_ADMIN, TENANT_VIEWER
_RP = REGULATOR_PORTAL
_KM = KEY_MANAGER


def _r(*names: str) -> frozenset[str]:
    return frozenset(names)


# key -> roles allowed. Admin keys only ever list staff roles, tenant keys only tenant roles.
MATRIX: dict[str, frozenset[str]] = {
    # --- admin surface /api/admin/v1/ ---
    "admin.issuers.read": _r(_A, _O, _C, _AU, _R, _KM),
    "admin.signing_keys.read": _r(_A, _O, _AU, _KM),
    # An issuer's key is the trust anchor of its imports: whoever runs imports (commerce ops)
    # may not install one (ADR 1350). A new key needs a second, different user's approval.
    "admin.signing_keys.write": _r(_A, _KM),
    "admin.signing_keys.approve": _r(_A, _KM),
    "admin.contracts.read": _r(_A, _O, _C, _AU, _R),
    "admin.contracts.suspend": _r(_A, _O),
    "admin.contracts.terminate": _r(_A),
    "admin.blocks.read": _r(_A, _O, _AU, _R),
    "admin.imports.read": _r(_A, _O, _AU),
    "admin.imports.write": _r(_A, _O),
    "admin.numbers.read": _r(_A, _O, _C, _AU),
    "admin.numbers.reserve": _r(_A, _O),
    "admin.numbers.assign": _r(_A, _O),
    "admin.numbers.release": _r(_A, _O),
    "admin.numbers.recall": _r(_A, _O, _C),
    "admin.numbers.retire": _r(_A, _O),
    "admin.numbers.reinstate": _r(_A, _O),
    "admin.inventory_pools.read": _r(_A, _O, _C, _AU),
    "admin.tenant_pools.read": _r(_A, _O, _C, _AU),
    "admin.tenants.read": _r(_A, _O, _C, _AU),
    "admin.leases.read": _r(_A, _O, _C, _AU),
    "admin.leases.renew": _r(_A, _O),
    "admin.leases.auto_renew": _r(_A, _O),
    "admin.quarantine_policies.read": _r(_A, _O, _C, _AU),
    # Vanity tier prices (ADR 1650): commerce proposes; a second, different staff user of
    # commerce or the numbering admin approves or rejects (four eyes in the service).
    "admin.vanity_tiers.read": _r(_A, _O, _C, _AU),
    "admin.vanity_tiers.propose": _r(_A, _O),
    "admin.vanity_tiers.approve": _r(_A, _O),
    # Legal approves cool-offs; the numbering admin or a compliance officer records an
    # approved change (the approver is required; ADR 1620).
    "admin.quarantine_policies.write": _r(_A, _C),
    # Reference data written over REST and in the admin (issue 16, ADR 1620). Commerce ops
    # run the catalogue day to day; deactivating an issuer (it stops taking imports) is
    # the numbering admin's alone. Nothing is deleted: DELETE is 405 everywhere.
    "admin.issuers.write": _r(_A, _O),
    "admin.issuers.deactivate": _r(_A),
    "admin.contracts.write": _r(_A, _O),
    "admin.blocks.write": _r(_A, _O),
    "admin.blocks.deactivate": _r(_A, _O),
    "admin.tenants.write": _r(_A, _O),
    "admin.tenants.deactivate": _r(_A, _O, _C),
    "admin.inventory_pools.write": _r(_A, _O),
    "admin.inventory_pools.deactivate": _r(_A, _O),
    "admin.tenant_pools.write": _r(_A, _O),
    "admin.tenant_pools.deactivate": _r(_A, _O, _C),
    # Regulator exports (ADR 0900): the export roles of DESIGN §7 plus the auditor (read-only).
    # regulator-portal-service (issue 17, ADR 1701) reads and verifies exports, nothing else.
    "admin.exports.read": _r(_A, _C, _AU, _R, _RP),
    "admin.exports.write": _r(_A, _C, _R),
    "admin.exports.verify": _r(_A, _C, _AU, _R, _RP),
    # The ad-hoc inventory CSV is the numbers list as a file: the roles that may read numbers.
    "admin.exports.inventory": _r(_A, _O, _C, _AU),
    "admin.audit.read": _r(_A, _O, _C, _AU),
    "admin.audit.verify": _r(_A, _AU),
    # --- tenant portal /api/tenant/v1/ (the tenant always comes from the token) ---
    "tenant.numbers.search": _r(_TA, _TV),
    "tenant.numbers.read": _r(_TA, _TV),
    "tenant.numbers.assign": _r(_TA),
    "tenant.numbers.release": _r(_TA),
    "tenant.reservations.read": _r(_TA, _TV),
    "tenant.reservations.create": _r(_TA),
    "tenant.reservations.cancel": _r(_TA),
    "tenant.reservations.extend": _r(_TA),
    "tenant.leases.read": _r(_TA, _TV),
    "tenant.leases.auto_renew": _r(_TA),
    "tenant.pool.read": _r(_TA, _TV),
}


# Admin-only keys (issue 13 item 3, ADR 1351): reference data REST only reads, and tables
# REST does not serve. Same shape as MATRIX; core.admin.MatrixAdmin reads both.
ADMIN_MATRIX: dict[str, frozenset[str]] = {
    # A tier's name and whether it is sold; its price changes only through four eyes.
    "admin.vanity_tiers.write": _r(_A, _O),
    "admin.outbox.read": _r(_A, _O, _C, _AU),
    # Stored idempotency responses carry tenants' data: whoever may read the audit trail.
    "admin.idempotency.read": _r(_A, _O, _C, _AU),
}


def allowed(key: str, role_names: frozenset[str]) -> bool:
    return bool((MATRIX.get(key) or ADMIN_MATRIX.get(key, frozenset())) & role_names)


# --- Django admin: number actions → the REST key that grants them ---------------------------
ADMIN_ACTIONS: dict[str, str] = {
    "recall": "admin.numbers.recall",
    "retire": "admin.numbers.retire",
    "reinstate": "admin.numbers.reinstate",
    "renew": "admin.leases.renew",
    "extend_reservation": "admin.numbers.reserve",  # extending is part of the reserve privilege
}


def admin_action_allowed(action: str, role_names: frozenset[str]) -> bool:
    return action in ADMIN_ACTIONS and allowed(ADMIN_ACTIONS[action], role_names)


def admin_action_roles(action: str) -> frozenset[str]:
    return MATRIX.get(ADMIN_ACTIONS.get(action, ""), frozenset())


# --- services: platform-only actions -------------------------------------------------------
def require_platform(actor: Actor, action: str) -> None:
    """Staff, platform services and jobs may; a tenant (or a service acting for one) may not."""
    if actor.acts_for_tenant:
        raise errors.ValidationError(f"action: {action} is a staff (ops) action, not a tenant one", field="action")


# --- services: four eyes ------------------------------------------------------------------
def require_second_pair_of_eyes(*, author: str, approver: Actor, what: str, field: str = "approved_by") -> None:
    """The one home of the four-eyes rule (ADR 1350 signing keys, ADR 1650 tier prices): the
    user who approves a change is not the one who made it. Compared on the actor identity the
    audit trail records, so "the same person" means the same audited identity."""
    if approver.identity == author:
        raise errors.ValidationError(
            f"{field}: {approver.identity} {what}; a second, different user must approve it", field=field
        )


# --- Django staff groups ↔ roles -----------------------------------------------------------
# A staff user's roles are the names of their groups that are staff roles (superusers are
# numbering.admin). Each group gets model permissions matching what the role may do.
APPS = ("contracts", "pools", "numbering", "audit", "exports", "core", "events")
# Append-only or machine-written: nobody edits them in the admin.
READ_ONLY_MODELS = {
    ("audit", "auditevent"),
    ("audit", "chainhead"),
    ("core", "outboxevent"),
    ("core", "idempotencyrecord"),
    ("events", "processedmessage"),
}

_OPS_EDIT = {
    "contracts": {"issuer", "contract", "numberblock", "inventoryimport"},
    "pools": {"tenant", "inventorypool", "tenantpool"},
    "numbering": {"number", "lease", "reservation"},
}

# role -> {(app_label, model or "*"): set of actions}
STAFF_GRANTS: dict[str, dict[tuple[str, str], set[str]]] = {
    NUMBERING_ADMIN: {(app, "*"): {"view", "add", "change", "delete"} for app in APPS},
    COMMERCE_OPS: {
        **{(app, "*"): {"view"} for app in APPS},
        **{(app, model): {"view", "add", "change"} for app, models in _OPS_EDIT.items() for model in models},
    },
    COMPLIANCE_OFFICER: {
        **{(app, "*"): {"view"} for app in APPS},
        ("numbering", "number"): {"view", "change"},  # recall
    },
    AUDITOR: {(app, "*"): {"view"} for app in APPS},
    REGULATOR_EXPORTER: {
        **{(app, "*"): {"view"} for app in APPS},
        ("exports", "*"): {"view", "add", "change"},
    },
    KEY_MANAGER: {
        ("contracts", "issuer"): {"view"},
        ("contracts", "signingkey"): {"view", "add", "change"},
    },
}


def _permissions(grants: dict[tuple[str, str], set[str]]) -> list[Any]:
    from django.contrib.auth.models import Permission  # models: not importable before the app registry

    wanted: list[Permission] = []
    perms = Permission.objects.select_related("content_type").filter(content_type__app_label__in=APPS)
    for perm in perms:
        app, model = perm.content_type.app_label, perm.content_type.model
        action = perm.codename.split("_", 1)[0]
        allowed = grants.get((app, model), set()) | grants.get((app, "*"), set())
        if (app, model) in READ_ONLY_MODELS and action != "view":
            continue
        if action in allowed:
            wanted.append(perm)
    return wanted


def ensure_staff_groups() -> dict[str, int]:
    """Create/refresh one group per staff role; returns permissions per group. Idempotent."""
    from django.contrib.auth.models import Group

    result = {}
    for role in STAFF_ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        perms = _permissions(STAFF_GRANTS[role])
        group.permissions.set(perms)
        result[role] = len(perms)
    return result


def roles_of(user: Any) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    names = set(user.groups.filter(Q(name__in=STAFF_ROLES)).values_list("name", flat=True))
    if user.is_superuser:
        names.add(NUMBERING_ADMIN)
    return frozenset(names)


def staff_actor(user: Any) -> Actor:
    """The audit actor for a staff user acting in the admin."""
    return Actor.user(user.get_username(), roles=roles_of(user))


# --- gRPC: client certificate CN → methods, and how the caller acts ----------------------
# The default table is the spec's; GRPC_CLIENT_PERMISSIONS replaces it as a whole, so an
# operator reading the variable sees the complete allowlist. Each CN either acts *for a
# tenant* (every mutation must name the tenant; the CAS holder guard then applies, so it can
# only touch that tenant's numbers) or *as the platform* (may act on any holder's number).
# JSON, per CN, either the object form {"methods": [...], "acts_as": "tenant"|"platform"}
# or the original list form [...] (then a CN of the default table keeps its default mode and
# any other CN acts for a tenant: fail closed). Issue 13 item 1, ADR 1300.
GRPC_METHODS = frozenset(
    {
        "ValidateLease",
        "ValidateLeases",
        "ValidateLeaseStream",
        "Lookup",
        "Reserve",
        "ExtendReservation",
        "Assign",
        "Release",
        "Recall",
    }
)
GRPC_MUTATIONS = frozenset({"Reserve", "ExtendReservation", "Assign", "Release", "Recall"})
GRPC_PLATFORM_ONLY_METHODS = frozenset({"Recall"})  # no tenant in the request: the platform's act
# The gRPC pools (issue 11, ADR 1101): the hot path runs in processes of its own, so no write
# traffic can take its CPU through the GIL. `hot` serves the validations (and Lookup, which the
# same callers use); `mutations` serves everything else (and Lookup, for the portal and
# compliance); `all` is one process serving both (tests, small installs). A pool's allowlist is
# the configured table narrowed to the methods it serves: a CN with nothing left is refused.
# The batch and the stream (issue 11 item 4, ADR 1110) are ValidateLease in bulk: same pool,
# same callers.
GRPC_VALIDATE_METHODS = frozenset({"ValidateLease", "ValidateLeases", "ValidateLeaseStream"})
GRPC_POOLS: dict[str, frozenset[str]] = {
    "all": GRPC_METHODS,
    "hot": GRPC_VALIDATE_METHODS | {"Lookup"},
    "mutations": GRPC_METHODS - GRPC_VALIDATE_METHODS,
}
ACTS_FOR_TENANT = "tenant"
ACTS_AS_PLATFORM = "platform"


class GrpcGrant(frozenset[str]):
    """The gRPC methods one CN may call (a frozenset of names) plus how it acts."""

    acts_for_tenant: bool

    def __new__(cls, methods: Iterable[str] = (), *, acts_for_tenant: bool = False) -> GrpcGrant:
        grant = super().__new__(cls, methods)
        grant.acts_for_tenant = acts_for_tenant
        return grant

    def __reduce__(self) -> Any:
        return (_grant, (sorted(self), self.acts_for_tenant))

    @property
    def acts_as(self) -> str:
        return ACTS_FOR_TENANT if self.acts_for_tenant else ACTS_AS_PLATFORM

    def __repr__(self) -> str:
        return f"GrpcGrant({sorted(self)!r}, acts_as={self.acts_as!r})"


def _grant(methods: list[str], acts_for_tenant: bool) -> GrpcGrant:
    return GrpcGrant(methods, acts_for_tenant=acts_for_tenant)


GRPC_DEFAULT_PERMISSIONS: dict[str, GrpcGrant] = {
    "sms-orchestrator": GrpcGrant({"ValidateLease", "ValidateLeases", "ValidateLeaseStream", "Lookup"}),
    "routing-engine": GrpcGrant({"ValidateLease", "ValidateLeases", "ValidateLeaseStream", "Lookup"}),
    "sender-id-registry": GrpcGrant({"Lookup"}),
    "billing-service": GrpcGrant({"Lookup"}),
    "customer-portal-bff": GrpcGrant(
        {"Lookup", "Reserve", "ExtendReservation", "Assign", "Release"}, acts_for_tenant=True
    ),
    "compliance-service": GrpcGrant({"Lookup", "Recall"}),
}


def grpc_grant(cn: str, methods: Iterable[str], acts_as: str | None = None) -> GrpcGrant:
    """One CN's grant. acts_as None (the list form, or a bare frozenset): the default table's
    mode for a CN it lists, else "tenant". A tenant-acting CN may not hold a platform-only method."""
    if acts_as is None:
        default = GRPC_DEFAULT_PERMISSIONS.get(cn)
        acts_as = default.acts_as if default is not None else ACTS_FOR_TENANT
    if acts_as not in (ACTS_FOR_TENANT, ACTS_AS_PLATFORM):
        raise ImproperlyConfigured(
            f'GRPC_CLIENT_PERMISSIONS[{cn!r}]["acts_as"] must be "tenant" or "platform", not {acts_as!r}'
        )
    grant = GrpcGrant(methods, acts_for_tenant=acts_as == ACTS_FOR_TENANT)
    platform_only = sorted(grant & GRPC_PLATFORM_ONLY_METHODS)
    if grant.acts_for_tenant and platform_only:
        raise ImproperlyConfigured(
            f"GRPC_CLIENT_PERMISSIONS[{cn!r}] acts for a tenant but is granted {platform_only}, which only a "
            f'platform caller may call; use {{"methods": [...], "acts_as": "platform"}}'
        )
    return grant


def grpc_grants(permissions: Mapping[str, Iterable[str]]) -> dict[str, GrpcGrant]:
    """Normalise a table whose values may be GrpcGrants or plain sets of method names."""
    return {
        cn: methods if isinstance(methods, GrpcGrant) else grpc_grant(cn, methods)
        for cn, methods in permissions.items()
    }


def parse_grpc_permissions(raw: str) -> dict[str, GrpcGrant]:
    """Parse GRPC_CLIENT_PERMISSIONS; a malformed value stops the process at start."""
    if not raw.strip():
        return dict(GRPC_DEFAULT_PERMISSIONS)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"GRPC_CLIENT_PERMISSIONS is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise ImproperlyConfigured(
            'GRPC_CLIENT_PERMISSIONS must be a non-empty JSON object {"<CN>": ["<Method>", ...]}'
            ' or {"<CN>": {"methods": ["<Method>", ...], "acts_as": "tenant"|"platform"}}'
        )
    result: dict[str, GrpcGrant] = {}
    for cn, value in data.items():
        if not isinstance(cn, str) or not cn.strip():
            raise ImproperlyConfigured("GRPC_CLIENT_PERMISSIONS: every key must be a non-empty certificate CN")
        acts_as = None
        methods = value
        if isinstance(value, dict):
            extra = sorted(set(value) - {"methods", "acts_as"})
            if extra or "methods" not in value or "acts_as" not in value:
                raise ImproperlyConfigured(
                    f'GRPC_CLIENT_PERMISSIONS[{cn!r}] must be {{"methods": [...], "acts_as": "tenant"|"platform"}}'
                    + (f"; unknown key(s) {extra}" if extra else "")
                )
            methods, acts_as = value["methods"], value["acts_as"]
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise ImproperlyConfigured(f"GRPC_CLIENT_PERMISSIONS[{cn!r}] must be a list of method names")
        unknown = sorted(set(methods) - GRPC_METHODS)
        if unknown:
            raise ImproperlyConfigured(
                f"GRPC_CLIENT_PERMISSIONS[{cn!r}]: unknown method(s) {unknown}; known: {sorted(GRPC_METHODS)}"
            )
        result[cn] = grpc_grant(cn, methods, acts_as)
    return result


def grpc_pool_permissions(table: dict[str, GrpcGrant], pool: str) -> dict[str, GrpcGrant]:
    """The allowlist of one pool: each CN's grant narrowed to the methods the pool serves."""
    served = GRPC_POOLS[pool]
    return {
        cn: GrpcGrant(grant & served, acts_for_tenant=grant.acts_for_tenant)
        for cn, grant in table.items()
        if grant & served
    }


def configured_grpc_permissions() -> dict[str, GrpcGrant]:
    return grpc_pool_permissions(parse_grpc_permissions(settings.GRPC_CLIENT_PERMISSIONS_JSON), settings.GRPC_POOL)
