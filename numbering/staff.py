"""Django staff groups ↔ the roles of DESIGN §3.2 (core/authz.py).

A staff user's roles are the names of their groups that are staff roles (superusers are
numbering.admin). Each group gets model permissions matching what the role may do; the
admin's actions check the same permissions and pass the roles to the services' Actor.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from core import authz as roles
from core.actors import Actor

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
    "contracts": {"issuer", "contract", "numberblock", "inventoryimport", "signingkey"},
    "pools": {"tenant", "inventorypool", "tenantpool"},
    "numbering": {"number", "lease", "reservation"},
}

# role -> {(app_label, model or "*"): set of actions}
MATRIX: dict[str, dict[tuple[str, str], set[str]]] = {
    roles.NUMBERING_ADMIN: {(app, "*"): {"view", "add", "change", "delete"} for app in APPS},
    roles.COMMERCE_OPS: {
        **{(app, "*"): {"view"} for app in APPS},
        **{(app, model): {"view", "add", "change"} for app, models in _OPS_EDIT.items() for model in models},
    },
    roles.COMPLIANCE_OFFICER: {
        **{(app, "*"): {"view"} for app in APPS},
        ("numbering", "number"): {"view", "change"},  # recall
    },
    roles.AUDITOR: {(app, "*"): {"view"} for app in APPS},
    roles.REGULATOR_EXPORTER: {
        **{(app, "*"): {"view"} for app in APPS},
        ("exports", "*"): {"view", "add", "change"},
    },
}


def _permissions(grants: dict[tuple[str, str], set[str]]) -> list[Permission]:
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
    result = {}
    for role in roles.STAFF_ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        perms = _permissions(MATRIX[role])
        group.permissions.set(perms)
        result[role] = len(perms)
    return result


def roles_of(user: Any) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    names = set(user.groups.filter(Q(name__in=roles.STAFF_ROLES)).values_list("name", flat=True))
    if user.is_superuser:
        names.add(roles.NUMBERING_ADMIN)
    return frozenset(names)


def staff_actor(user: Any) -> Actor:
    """The audit actor for a staff user acting in the admin."""
    return Actor.user(user.get_username(), roles=roles_of(user))
