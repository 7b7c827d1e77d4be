"""regulator-portal-service's machine role (issue 17, ADR 1701): exports read and verify,
nothing else; it never counts in a tenant token and is no Django staff group."""

from __future__ import annotations

from core import authz as roles
from core.api.auth import principal_from_claims
from core.api.permissions import MATRIX


def test_the_regulator_portal_may_only_read_and_verify_exports() -> None:
    assert {key for key, allowed in MATRIX.items() if roles.REGULATOR_PORTAL in allowed} == {
        "admin.exports.read",
        "admin.exports.verify",
    }


def test_the_regulator_portal_role_counts_only_in_a_platform_token() -> None:
    service = principal_from_claims({"sub": "regulator-portal-service", "roles": ["regulator.portal"]})
    assert service.roles == {"regulator.portal"} and not service.is_tenant
    tenant = principal_from_claims(
        {"sub": "x", "roles": ["regulator.portal"], "tenant_id": "6f1c8a52-2d55-4a39-9a53-0e0b9a1f4f10"}
    )
    assert tenant.roles == frozenset()
    assert roles.REGULATOR_PORTAL not in roles.STAFF_ROLES  # no staff group is made for a service
