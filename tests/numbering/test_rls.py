"""Row-level security, tested as numbering_app (the service's role), never as a superuser."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connection, connections, transaction

from core import errors
from core.rls import rls_scope
from numbering import services
from numbering.lifecycle import State
from numbering.models import Lease, Number, Reservation
from pools.models import TenantPool
from tests.conftest import as_tenant
from tests.numbering.helpers import number_in

pytestmark = pytest.mark.usefixtures("committed")


def app_dsn() -> str:
    cfg = connections["default"].settings_dict
    return f"host={cfg['HOST']} port={cfg['PORT']} dbname={cfg['NAME']} user={cfg['USER']}"


@pytest.fixture
def world(alice: Any, bob: Any, charlie: Any) -> dict[str, Any]:
    return {
        "alice_assigned": number_in(State.ASSIGNED, alice),
        "alice_reserved": number_in(State.RESERVED, alice),
        "bob_assigned": number_in(State.ASSIGNED, bob),
        "free": number_in(State.AVAILABLE, None),
        "retired": number_in(State.RETIRED, None),
    }


def visible_numbers(**scope: Any) -> set[str]:
    with transaction.atomic(), rls_scope(**scope):
        return set(Number.objects.values_list("number", flat=True))


def test_the_app_role_is_neither_owner_nor_superuser_nor_bypassrls(world: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolsuper, r.rolbypassrls, c.relowner = r.oid, c.relforcerowsecurity"
            " FROM pg_roles r, pg_class c WHERE r.rolname = current_user AND c.relname = 'numbering_number'"
        )
        assert cursor.fetchone() == (False, False, False, True)


def test_a_tenant_sees_its_own_numbers_and_available_inventory_only(world: Any, alice: Any) -> None:
    seen = visible_numbers(tenant_id=alice.id)
    assert seen == {world["alice_assigned"].number, world["alice_reserved"].number, world["free"].number}


def test_platform_scope_sees_every_number(world: Any) -> None:
    assert visible_numbers(platform=True) == {n.number for n in world.values()}


def test_without_a_scope_only_available_inventory_is_visible(world: Any) -> None:
    with psycopg.connect(app_dsn()) as conn:
        rows = {r[0] for r in conn.execute("SELECT number FROM numbering_number")}
        assert rows == {world["free"].number}
        assert conn.execute("SELECT count(*) FROM numbering_lease").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM numbering_reservation").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pools_tenantpool").fetchone() == (0,)


def test_a_tenant_cannot_read_another_tenants_reservations_leases_or_pool(
    world: Any, alice: Any, bob: Any, charlie: Any
) -> None:
    with transaction.atomic(), rls_scope(tenant_id=charlie.id):
        assert not Lease.objects.exists()
        assert not Reservation.objects.exists()
        assert list(TenantPool.objects.values_list("tenant_id", flat=True)) == [charlie.id]
    with transaction.atomic(), rls_scope(tenant_id=alice.id):
        assert set(Lease.objects.values_list("tenant_id", flat=True)) == {alice.id}
        assert set(Reservation.objects.values_list("tenant_id", flat=True)) == {alice.id}
        assert not TenantPool.objects.filter(tenant_id=bob.id).exists()


def test_a_tenant_cannot_change_another_tenants_number(world: Any, alice: Any) -> None:
    bobs = world["bob_assigned"]
    with transaction.atomic(), rls_scope(tenant_id=alice.id):
        assert Number.objects.filter(id=bobs.id).update(state="QUARANTINED") == 0
        assert Lease.objects.filter(number_id=bobs.id).update(auto_renew=False) == 0
    with pytest.raises(errors.NumberNotFound):
        services.number_release(number=bobs.number, actor=as_tenant(alice))
    with transaction.atomic(), rls_scope(platform=True):
        after = Number.objects.get(id=bobs.id)
        assert (after.state, after.version) == ("ASSIGNED", bobs.version)
        assert Lease.objects.get(number_id=bobs.id, status="ACTIVE").auto_renew is True


def test_a_tenant_cannot_write_a_row_for_another_tenant(world: Any, alice: Any, bob: Any) -> None:
    with pytest.raises(Exception, match="row-level security"), transaction.atomic(), rls_scope(tenant_id=alice.id):
        Number.objects.filter(id=world["free"].id).update(
            state="RESERVED", tenant_id=bob.id, reserved_until="2099-01-01T00:00:00Z"
        )


def test_a_tenant_acting_through_the_services_acts_only_as_itself(world: Any, alice: Any, bob: Any) -> None:
    # The request says bob, the token says alice: the reservation is alice's.
    result = services.number_reserve(number=world["free"].number, tenant_id=bob.id, actor=as_tenant(alice))
    assert result.number["tenant_id"] == str(alice.id)
