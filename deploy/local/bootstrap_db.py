"""Create the owner and app roles and the database named by DATABASE_OWNER_URL /
DATABASE_URL, if they do not exist yet. Idempotent.

Runs as a PostgreSQL superuser (DATABASE_ADMIN_URL, default the local `postgres` role
over loopback). The app role is created NOSUPERUSER NOBYPASSRLS NOCREATEDB: row-level
security must apply to it (ADR 0002).
"""

from __future__ import annotations

import os
import sys
from urllib.parse import unquote, urlparse

import psycopg
from psycopg import sql


def parts(url: str) -> dict[str, str]:
    p = urlparse(url)
    return {
        "user": unquote(p.username or ""),
        "password": unquote(p.password or ""),
        "host": p.hostname or "127.0.0.1",
        "port": str(p.port or 5432),
        "dbname": unquote(p.path.lstrip("/")),
    }


def ensure_role(cur: psycopg.Cursor, name: str, password: str, attrs: str) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    verb = "ALTER" if cur.fetchone() else "CREATE"
    stmt = sql.SQL(f"{verb} ROLE {{}} WITH LOGIN {attrs}").format(sql.Identifier(name))
    if password:
        stmt = stmt + sql.SQL(" PASSWORD {}").format(sql.Literal(password))
    cur.execute(stmt)
    print(f"[bootstrap-db] role {name}: {'updated' if verb == 'ALTER' else 'created'}")


PLATFORM_GROUP = "numbering_platform"  # the RLS policies name it (numbering migration 0007, ADR 1352)


def ensure_platform_and_tenant_roles(cur: psycopg.Cursor, *, app: dict[str, str], owner: dict[str, str]) -> None:
    """Platform scope is honoured only for members of PLATFORM_GROUP (the app and owner roles);
    the tenant login role (DATABASE_TENANT_URL, default numbering_tenant) is never a member."""
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [PLATFORM_GROUP])
    if cur.fetchone() is None:
        cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(PLATFORM_GROUP)))
        print(f"[bootstrap-db] role {PLATFORM_GROUP}: created")
    for member in (app["user"], owner["user"]):
        cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(PLATFORM_GROUP), sql.Identifier(member)))
    tenant = parts(os.environ.get("DATABASE_TENANT_URL", "postgres://numbering_tenant@127.0.0.1:5432/numbering"))
    if tenant["user"] in (app["user"], owner["user"], PLATFORM_GROUP):
        raise SystemExit("DATABASE_TENANT_URL must use its own role (not the app, owner or platform role)")
    ensure_role(cur, tenant["user"], tenant["password"], "NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
    cur.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(PLATFORM_GROUP), sql.Identifier(tenant["user"])))


def main() -> int:
    app = parts(os.environ.get("DATABASE_URL", "postgres://numbering_app@127.0.0.1:5432/numbering"))
    owner = parts(os.environ.get("DATABASE_OWNER_URL", "postgres://numbering_owner@127.0.0.1:5432/numbering"))
    admin_url = os.environ.get("DATABASE_ADMIN_URL", f"postgres://postgres@{owner['host']}:{owner['port']}/postgres")
    if app["dbname"] != owner["dbname"]:
        print("DATABASE_URL and DATABASE_OWNER_URL must name the same database", file=sys.stderr)
        return 2
    with psycopg.connect(admin_url, autocommit=True) as conn, conn.cursor() as cur:
        ensure_role(cur, owner["user"], owner["password"], "NOSUPERUSER CREATEDB NOCREATEROLE NOBYPASSRLS")
        ensure_role(cur, app["user"], app["password"], "NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
        ensure_platform_and_tenant_roles(cur, app=app, owner=owner)
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [owner["dbname"]])
        if cur.fetchone() is None:
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(owner["dbname"]), sql.Identifier(owner["user"])
                )
            )
            print(f"[bootstrap-db] database {owner['dbname']}: created")
        else:
            print(f"[bootstrap-db] database {owner['dbname']}: exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
