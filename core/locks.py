"""PostgreSQL advisory locks: the one helper every module takes them through.

Every lock is a two-int key (namespace, key) so the namespaces never collide and an
operator can read `pg_locks.classid` to see which kind of lock a session holds:

    JOBS              "numj"  one run of a job at a time (sweeps, renewals, exports' period loop)
    EXPORTS           "nume"  one run of a regulator export period at a time
    IMPORTS           "numi"  inventory imports commit one at a time (transaction-scoped)
    RELAY_MEMBERS     "numr"  one per running outbox relay (the relay counts its peers)
    RELAY_PARTITIONS  "nump"  one per outbox partition a relay owns
    AUDIT_ARCHIVE     "numa"  one audit partition job (create ahead / archive + drop) at a time

Session locks (`try_lock`, `job_lock`) are held until released and need the same
connection throughout; transaction locks (`xact_lock`) end with the transaction. The relay
holds its locks on its own psycopg connection and uses the SQL below with these namespaces.

Every sweep is also safe without a lock (each change is a compare-and-set): a lock just
keeps two overlapping runs from doing the same work twice and racing each other.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from django.db import connections

JOBS = 0x6E756D6A  # "numj"
EXPORTS = 0x6E756D65  # "nume"
IMPORTS = 0x6E756D69  # "numi"
RELAY_MEMBERS = 0x6E756D72  # "numr"
RELAY_PARTITIONS = 0x6E756D70  # "nump"
AUDIT_ARCHIVE = 0x6E756D61  # "numa"

TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(%s, %s)"
UNLOCK_SQL = "SELECT pg_advisory_unlock(%s, %s)"
XACT_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s, %s)"


def key_for(name: str | int) -> int:
    """A lock key: an int as it is, a name by its CRC-32 (fits PostgreSQL's int4)."""
    if isinstance(name, int):
        return name
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


@contextmanager
def try_lock(namespace: int, name: str | int, *, using: str = "default") -> Iterator[bool]:
    """Yield True when this session now holds (namespace, name), False when another does."""
    key = key_for(name)
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(TRY_LOCK_SQL, [namespace, key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute(UNLOCK_SQL, [namespace, key])


def job_lock(name: str) -> AbstractContextManager[bool]:
    """At most one run of job `name` at a time, across processes and machines."""
    return try_lock(JOBS, name)


def xact_lock(namespace: int, name: str | int, *, using: str = "default") -> None:
    """Wait for (namespace, name) and hold it until the current transaction ends."""
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("xact_lock must be taken inside a transaction")
    with connection.cursor() as cursor:
        cursor.execute(XACT_LOCK_SQL, [namespace, key_for(name)])
