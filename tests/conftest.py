"""Shared fixtures: real PostgreSQL (as the app role), Redis and NATS.

Named tenants: alice and bob hold numbers; charlie must never see their rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connections, transaction

from core import clock
from core.actors import Actor
from core.clock import FakeClock
from core.rls import rls_scope
from tests.factories import InventoryPoolFactory, TenantFactory, TenantPoolFactory

# Tables a committed test may fill; emptied afterwards (seeded policies are kept).
_KEEP = {
    "django_migrations",
    "django_content_type",
    "auth_permission",
    "numbering_quarantinepolicy",
    "numbering_leasecacheepoch",  # the database's lease-cache epoch (ADR 1200) outlives a test
    # Vanity tiers and their seeded prices are reference data like the cool-offs (ADR 1650);
    # a committed test that changes a price restores it.
    "numbering_vanitytier",
    "numbering_tierpricechange",
}


def owner_dsn() -> str:
    cfg = connections["owner"].settings_dict
    return f"host={cfg['HOST']} port={cfg['PORT']} dbname={cfg['NAME']} user={cfg['USER']}"


def tenant_dsn() -> str:
    cfg = connections["tenant"].settings_dict
    return f"host={cfg['HOST']} port={cfg['PORT']} dbname={cfg['NAME']} user={cfg['USER']}"


def superuser_dsn(dbname: str | None = None) -> str:
    cfg = connections["owner"].settings_dict
    return f"host={cfg['HOST']} port={cfg['PORT']} dbname={dbname or cfg['NAME']} user=postgres"


def _empty_tables() -> None:
    with psycopg.connect(owner_dsn(), autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [t for (t,) in cur.fetchall() if t not in _KEEP]
        # The audit table refuses TRUNCATE by trigger; its owner may lift the trigger for
        # this one transaction (ALTER TABLE is transactional).
        cur.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_no_truncate")
        cur.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
        cur.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_no_truncate")
        conn.commit()


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment: Any, django_db_blocker: Any) -> Iterator[None]:
    """Create and migrate the test database as the owner role, then point the app alias
    (numbering_app, subject to RLS) at it. Django's own runner would create it through
    the default alias, which may not create databases."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        connections["default"].close()
        config = setup_databases(verbosity=0, interactive=False, aliases=["owner"], serialized_aliases=[])
        connections["default"].creation.set_as_test_mirror(connections["owner"].settings_dict)
        settings.DATABASES["default"]["NAME"] = connections["owner"].settings_dict["NAME"]
        if "tenant" in connections:  # the restricted tenant role (ADR 1352), same test database
            connections["tenant"].creation.set_as_test_mirror(connections["owner"].settings_dict)
            settings.DATABASES["tenant"]["NAME"] = connections["owner"].settings_dict["NAME"]
    yield
    with django_db_blocker.unblock():
        for conn in connections.all():
            conn.close()
        _end_stray_sessions(connections["owner"].settings_dict["NAME"])
        teardown_databases(config, verbosity=0)


def _end_stray_sessions(database: str) -> None:
    """A thread some test started and never stopped may still hold a session on the test
    database, and DROP DATABASE would then fail the whole run after every test passed. Name
    each one on stderr (that is the leak to fix) and end it, so the run reports the tests."""
    import sys

    with psycopg.connect(superuser_dsn("postgres"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, usename, application_name, left(query, 120) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
        for pid, user, app, query in rows:
            print(f"\n[conftest] stray session on {database}: pid={pid} user={user} app={app!r} last={query!r}",
                  file=sys.stderr)  # fmt: skip
            conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits for it to exit


@pytest.fixture(autouse=True)
def _platform_scope_for_db_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Inside a `db` test's transaction, read as the platform does (services and the RLS
    tests set their own scope, nested inside this one)."""
    marker = request.node.get_closest_marker("django_db")
    uses_db = "db" in request.fixturenames or (marker is not None and not marker.kwargs.get("transaction"))
    if not uses_db or "committed" in request.fixturenames:
        yield
        return
    request.getfixturevalue("db")
    with rls_scope(platform=True):
        yield


@contextmanager
def committed_tables(django_db_blocker: Any) -> Iterator[None]:
    """Database access that really commits, on empty tables, emptied again afterwards (for the
    `committed` fixture and for a module that commits its data once)."""
    with django_db_blocker.unblock():
        _empty_tables()
        try:
            yield
        finally:
            for conn in connections.all():
                conn.close()
            _empty_tables()


@pytest.fixture
def committed(django_db_blocker: Any, django_db_setup: Any) -> Iterator[None]:
    """Real commits for tests with real concurrency; every table is emptied afterwards."""
    with committed_tables(django_db_blocker):
        yield


@pytest.fixture
def platform() -> Iterator[None]:
    with transaction.atomic(), rls_scope(platform=True):
        yield


@pytest.fixture(autouse=True)
def _clean_redis_db() -> Iterator[None]:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    assert not settings.REDIS_URL.rstrip("/").endswith("/0"), "tests never flush Redis database 0"
    client.flushdb()
    yield


@pytest.fixture
def general_pool() -> Any:
    return InventoryPoolFactory()


def _tenant(name: str, pool: Any, **kw: Any) -> Any:
    tenant = TenantFactory(name=name.title(), registration_no=f"REG-{name.upper()}")
    TenantPoolFactory(tenant=tenant, inventory_pools=[pool], **kw)
    return tenant


@pytest.fixture
def alice(general_pool: Any) -> Any:
    return _tenant("alice", general_pool)


@pytest.fixture
def bob(general_pool: Any) -> Any:
    return _tenant("bob", general_pool)


@pytest.fixture
def charlie(general_pool: Any) -> Any:
    return _tenant("charlie", general_pool)


@pytest.fixture
def ops() -> Actor:
    return Actor.user("ops.olga", roles=frozenset({"commerce.ops"}))


def as_tenant(tenant: Any) -> Actor:
    return Actor.tenant(f"user-of-{tenant.name.lower()}", tenant.id, roles=frozenset({"tenant.admin"}))


# --- local S3 server and WORM bucket (issue 7) ---
from tests.s3server import export_key_dir, s3_server, worm_bucket  # noqa: E402,F401


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    """Install a clock that moves only when the test says so (core.clock)."""
    with clock.installed(FakeClock()) as installed:
        assert isinstance(installed, FakeClock)
        yield installed
