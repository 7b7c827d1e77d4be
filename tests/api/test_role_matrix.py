"""Every endpoint × every role (and no token / broken tokens) → exactly the allow/deny of the
matrix in core/authz.py."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from audit.models import AuditEvent
from core import authz as roles
from core.api.auth import principal_from_claims
from core.authz import MATRIX
from numbering.lifecycle import State
from numbering.models import Lease, Reservation
from pools.models import InventoryPool, TenantPool
from tests.api.conftest import Api, bad_tokens, make_token
from tests.factories import BlockFactory, ContractFactory, InventoryPoolFactory, IssuerFactory
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.django_db

A = "/api/admin/v1"
T = "/api/tenant/v1"

# (method, path as in the OpenAPI schema, matrix key, body)
ENDPOINTS: list[tuple[str, str, str, Any]] = [
    ("GET", f"{A}/issuers/", "admin.issuers.read", None),
    ("POST", f"{A}/issuers/", "admin.issuers.write", {}),
    ("GET", f"{A}/issuers/{{id}}/", "admin.issuers.read", None),
    ("PATCH", f"{A}/issuers/{{id}}/", "admin.issuers.write", {}),
    ("POST", f"{A}/issuers/{{id}}/deactivate/", "admin.issuers.deactivate", None),
    ("GET", f"{A}/issuers/{{id}}/signing-keys/", "admin.signing_keys.read", None),
    ("POST", f"{A}/issuers/{{id}}/signing-keys/", "admin.signing_keys.write", {}),
    ("POST", f"{A}/issuers/{{id}}/signing-keys/{{fingerprint}}/approve/", "admin.signing_keys.approve", None),
    ("POST", f"{A}/issuers/{{id}}/signing-keys/{{fingerprint}}/revoke/", "admin.signing_keys.write", {}),
    ("GET", f"{A}/contracts/", "admin.contracts.read", None),
    ("POST", f"{A}/contracts/", "admin.contracts.write", {}),
    ("GET", f"{A}/contracts/{{id}}/", "admin.contracts.read", None),
    ("PATCH", f"{A}/contracts/{{id}}/", "admin.contracts.write", {}),
    ("POST", f"{A}/contracts/{{id}}/suspend/", "admin.contracts.suspend", {"reason": "matrix"}),
    ("POST", f"{A}/contracts/{{id}}/terminate/", "admin.contracts.terminate", {"reason": "matrix"}),
    ("GET", f"{A}/blocks/", "admin.blocks.read", None),
    ("POST", f"{A}/blocks/", "admin.blocks.write", {}),
    ("GET", f"{A}/blocks/{{id}}/", "admin.blocks.read", None),
    ("PATCH", f"{A}/blocks/{{id}}/", "admin.blocks.write", {}),
    ("POST", f"{A}/blocks/{{id}}/deactivate/", "admin.blocks.deactivate", None),
    ("GET", f"{A}/imports/", "admin.imports.read", None),
    ("POST", f"{A}/imports/", "admin.imports.write", {}),
    ("GET", f"{A}/imports/{{id}}/", "admin.imports.read", None),
    ("GET", f"{A}/numbers/", "admin.numbers.read", None),
    ("GET", f"{A}/numbers/{{number}}/", "admin.numbers.read", None),
    ("POST", f"{A}/numbers/{{number}}/reserve/", "admin.numbers.reserve", "reserve"),
    ("POST", f"{A}/numbers/{{number}}/assign/", "admin.numbers.assign", "assign"),
    ("POST", f"{A}/numbers/{{number}}/release/", "admin.numbers.release", {}),
    ("POST", f"{A}/numbers/{{number}}/recall/", "admin.numbers.recall", {}),
    ("POST", f"{A}/numbers/{{number}}/retire/", "admin.numbers.retire", {}),
    ("POST", f"{A}/numbers/{{number}}/reinstate/", "admin.numbers.reinstate", {}),
    ("GET", f"{A}/inventory-pools/", "admin.inventory_pools.read", None),
    ("POST", f"{A}/inventory-pools/", "admin.inventory_pools.write", {}),
    ("GET", f"{A}/inventory-pools/{{id}}/", "admin.inventory_pools.read", None),
    ("PATCH", f"{A}/inventory-pools/{{id}}/", "admin.inventory_pools.write", {}),
    ("POST", f"{A}/inventory-pools/{{id}}/deactivate/", "admin.inventory_pools.deactivate", None),
    ("GET", f"{A}/tenant-pools/", "admin.tenant_pools.read", None),
    ("POST", f"{A}/tenant-pools/", "admin.tenant_pools.write", {}),
    ("GET", f"{A}/tenant-pools/{{id}}/", "admin.tenant_pools.read", None),
    ("PATCH", f"{A}/tenant-pools/{{id}}/", "admin.tenant_pools.write", {}),
    ("POST", f"{A}/tenant-pools/{{id}}/deactivate/", "admin.tenant_pools.deactivate", None),
    ("GET", f"{A}/tenants/", "admin.tenants.read", None),
    ("POST", f"{A}/tenants/", "admin.tenants.write", {}),
    ("GET", f"{A}/tenants/{{id}}/", "admin.tenants.read", None),
    ("PATCH", f"{A}/tenants/{{id}}/", "admin.tenants.write", {}),
    ("POST", f"{A}/tenants/{{id}}/deactivate/", "admin.tenants.deactivate", None),
    ("GET", f"{A}/leases/", "admin.leases.read", None),
    ("GET", f"{A}/leases/{{id}}/", "admin.leases.read", None),
    ("POST", f"{A}/leases/{{id}}/renew/", "admin.leases.renew", None),
    ("POST", f"{A}/leases/{{id}}/auto-renew/", "admin.leases.auto_renew", {"auto_renew": False}),
    ("GET", f"{A}/quarantine-policies/", "admin.quarantine_policies.read", None),
    ("GET", f"{A}/quarantine-policies/{{case}}/", "admin.quarantine_policies.read", None),
    (
        "PATCH",
        f"{A}/quarantine-policies/{{case}}/",
        "admin.quarantine_policies.write",
        {"days": 91, "approved_by": "legal.lina", "approved_at": "2026-01-01T00:00:00Z"},
    ),
    ("GET", f"{A}/vanity-tiers/", "admin.vanity_tiers.read", None),
    ("GET", f"{A}/vanity-tiers/{{code}}/", "admin.vanity_tiers.read", None),
    ("GET", f"{A}/tier-price-changes/", "admin.vanity_tiers.read", None),
    ("POST", f"{A}/tier-price-changes/", "admin.vanity_tiers.propose", {}),
    ("GET", f"{A}/tier-price-changes/{{id}}/", "admin.vanity_tiers.read", None),
    ("POST", f"{A}/tier-price-changes/{{id}}/approve/", "admin.vanity_tiers.approve", {}),
    ("POST", f"{A}/tier-price-changes/{{id}}/reject/", "admin.vanity_tiers.approve", {}),
    ("GET", f"{A}/exports/", "admin.exports.read", None),
    ("POST", f"{A}/exports/", "admin.exports.write", {}),
    ("GET", f"{A}/exports/{{id}}/", "admin.exports.read", None),
    ("GET", f"{A}/exports/{{id}}/download/", "admin.exports.read", None),
    ("POST", f"{A}/exports/{{id}}/verify/", "admin.exports.verify", None),
    ("GET", f"{A}/exports/inventory.csv", "admin.exports.inventory", None),
    ("GET", f"{A}/audit/events/", "admin.audit.read", None),
    ("GET", f"{A}/audit/events/{{id}}/", "admin.audit.read", None),
    ("POST", f"{A}/audit/verify/", "admin.audit.verify", None),
    ("GET", f"{T}/numbers/", "tenant.numbers.read", None),
    ("GET", f"{T}/numbers/available/", "tenant.numbers.search", None),
    ("GET", f"{T}/numbers/{{number}}/", "tenant.numbers.read", None),
    ("POST", f"{T}/numbers/{{number}}/assign/", "tenant.numbers.assign", {}),
    ("POST", f"{T}/numbers/{{number}}/release/", "tenant.numbers.release", {}),
    ("POST", f"{T}/numbers/{{number}}/extend-reservation/", "tenant.reservations.extend", {}),
    ("GET", f"{T}/reservations/", "tenant.reservations.read", None),
    ("POST", f"{T}/reservations/", "tenant.reservations.create", {"count": 1}),
    ("GET", f"{T}/reservations/{{id}}/", "tenant.reservations.read", None),
    ("POST", f"{T}/reservations/{{id}}/cancel/", "tenant.reservations.cancel", None),
    ("GET", f"{T}/leases/", "tenant.leases.read", None),
    ("GET", f"{T}/leases/{{id}}/", "tenant.leases.read", None),
    ("POST", f"{T}/leases/{{id}}/auto-renew/", "tenant.leases.auto_renew", {"auto_renew": True}),
    ("GET", f"{T}/pool/", "tenant.pool.read", None),
]


@pytest.fixture
def world(alice: Any, dora: Any, general_pool: Any) -> dict[str, Any]:
    issuer = IssuerFactory()
    contract = ContractFactory(issuer=issuer)
    block = BlockFactory(issuer=issuer, contract=contract)
    assigned = number_in(State.ASSIGNED, alice)
    reserved = number_in(State.RESERVED, alice)
    number_in(State.AVAILABLE, None)
    return {
        "alice": alice,
        "number": assigned.number,
        "issuer": issuer.id,
        "contract": contract.id,
        "block": block.id,
        "lease": Lease.objects.get(number=assigned, status="ACTIVE").id,
        "reservation": Reservation.objects.get(number=reserved, status="ACTIVE").id,
        "inventory_pool": InventoryPool.objects.get(code="GENERAL_MSISDN").id,
        "tenant_pool": TenantPool.objects.get(tenant=alice).id,
        "audit_event": AuditEvent.objects.order_by("id").first().id,  # type: ignore[union-attr]
        # deactivated by the matrix walk: rows nobody else in the walk uses
        "dora": dora.id,
        "dora_pool": TenantPool.objects.get(tenant=dora).id,
        "spare_issuer": IssuerFactory().id,
        "spare_block": BlockFactory(issuer=issuer, contract=contract).id,
        "spare_inventory_pool": InventoryPoolFactory(code="SPARE").id,
    }


@pytest.fixture
def dora(general_pool: Any) -> Any:
    from tests.conftest import _tenant

    return _tenant("dora", general_pool)


def _url(path: str, world: dict[str, Any]) -> str:
    ids = {
        "/issuers/{id}/deactivate": world["spare_issuer"],
        "/blocks/{id}/deactivate": world["spare_block"],
        "/tenants/{id}/deactivate": world["dora"],
        "/tenant-pools/{id}/deactivate": world["dora_pool"],
        "/inventory-pools/{id}/deactivate": world["spare_inventory_pool"],
        "/issuers/{id}": world["issuer"],
        "/contracts/{id}": world["contract"],
        "/blocks/{id}": world["block"],
        "/imports/{id}": 1,
        "/exports/{id}": 1,
        "/inventory-pools/{id}": world["inventory_pool"],
        "/tenant-pools/{id}": world["tenant_pool"],
        "/tenants/{id}": world["alice"].id,
        "/leases/{id}": world["lease"],
        "/audit/events/{id}": world["audit_event"],
        "/reservations/{id}": world["reservation"],
        "/tier-price-changes/{id}": 999999,
    }
    for pattern, value in ids.items():
        path = path.replace(pattern, pattern.replace("{id}", str(value)))
    return (
        path.replace("{number}", world["number"])
        .replace("{case}", "MSISDN")
        .replace("{code}", "GOLD")
        .replace("{fingerprint}", "0" * 64)
    )


def _body(body: Any, world: dict[str, Any]) -> Any:
    if body == "reserve":
        return {"tenant_id": str(world["alice"].id)}
    if body == "assign":
        return {"tenant_id": str(world["alice"].id)}
    return body


def _token_for(role: str, world: dict[str, Any]) -> str:
    return make_token(role, world["alice"] if role in roles.TENANT_ROLES else None)


def test_every_route_is_in_the_matrix_test_and_every_key_is_exercised() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    routes = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops if m != "parameters"}
    listed = {(m, p) for m, p, _, _ in ENDPOINTS}
    assert routes == listed
    assert {k for _, _, k, _ in ENDPOINTS} == set(MATRIX)


def test_every_endpoint_times_every_role_matches_the_matrix(api: Api, world: dict[str, Any]) -> None:
    mismatches = []
    for role in roles.ALL_ROLES:
        tok = _token_for(role, world)
        for method, path, key, body in ENDPOINTS:
            reply = api.call(method, _url(path, world), tok, _body(body, world))
            code = (reply.json or {}).get("code") if reply.body.startswith(b"{") else None
            denied = reply.status == 403 and code == "FORBIDDEN"
            expected_allowed = role in MATRIX[key]
            server_error = reply.status >= 500
            if server_error or reply.status == 401 or denied == expected_allowed:
                mismatches.append((role, method, path, reply.status, code))
    assert mismatches == []


def test_no_token_and_broken_tokens_are_refused_everywhere(api: Api, world: dict[str, Any]) -> None:
    failures = []
    for name, tok in [("no token", None), *bad_tokens().items()]:
        for method, path, _key, body in ENDPOINTS:
            reply = api.call(method, _url(path, world), tok, _body(body, world))
            if (
                reply.status != 401
                or reply.json["code"] != "UNAUTHENTICATED"
                or "WWW-Authenticate" not in reply.headers
            ):
                failures.append((name, method, path, reply.status))
    assert failures == []


def test_malformed_authorization_header_is_refused(api: Api) -> None:
    reply = api.call("GET", f"{A}/numbers/", None, headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert reply.status == 401
    assert "Bearer" in reply.json["detail"]


def test_tenant_token_counts_only_tenant_roles_and_staff_token_only_staff_roles() -> None:
    tenant = principal_from_claims(
        {"sub": "x", "roles": ["numbering.admin", "tenant.viewer"], "tenant_id": "6f1c8a52-2d55-4a39-9a53-0e0b9a1f4f10"}
    )
    assert tenant.roles == {"tenant.viewer"} and tenant.is_tenant
    staff = principal_from_claims({"sub": "y", "roles": ["auditor", "tenant.admin"]})
    assert staff.roles == {"auditor"} and not staff.is_tenant
