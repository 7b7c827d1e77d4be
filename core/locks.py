"""At most one run of a job at a time, across processes and machines (PostgreSQL advisory lock).

Every sweep is also safe without it (each change is a compare-and-set), the lock just
keeps two overlapping runs from doing the same work twice and racing each other.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# First key of the two-int advisory lock space used by jobs (the relay uses others).
JOB_LOCK_NAMESPACE = 0x6E756D6A  # "numj"


def job_key(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


@contextmanager
def job_lock(name: str) -> Iterator[bool]:
    """Yield True when this process now runs `name`, False when another run holds it."""
    key = job_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [JOB_LOCK_NAMESPACE, key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [JOB_LOCK_NAMESPACE, key])
