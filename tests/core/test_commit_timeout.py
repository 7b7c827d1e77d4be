"""statement_timeout never cuts a COMMIT short (ADR 1400, issue 14).

Under quorum commit a COMMIT waits for a synchronous standby. ADR 1400 feared that the
service's statement_timeout (DATABASE_STATEMENT_TIMEOUT_MS) could fire during that wait, which
would cancel only the wait and acknowledge a commit no standby has. PostgreSQL disables the
statement timeout before it commits (postgres.c: finish_xact_command → disable_statement_timeout,
then CommitTransactionCommand), so everything COMMIT does — deferred triggers, the
synchronous-replication wait — runs without it. This test pins that: COMMIT runs a deferred
constraint trigger that sleeps four times the timeout, at the place the replication wait sits,
through the service's own connection, and it commits."""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction

pytestmark = pytest.mark.usefixtures("committed")

SLOW_COMMIT = """
CREATE TEMP TABLE slow_commit (id int);
CREATE FUNCTION pg_temp.slow_commit_fn() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(0.4); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON slow_commit DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION pg_temp.slow_commit_fn();
"""


def test_a_commit_slower_than_the_statement_timeout_still_commits() -> None:
    with connection.cursor() as cursor:
        cursor.execute(SLOW_COMMIT)
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 100")
        cursor.execute("SELECT pg_sleep(0.05)")  # a statement under the timeout is fine
        cursor.execute("INSERT INTO slow_commit VALUES (1)")
    assert time.monotonic() - started >= 0.4, "the COMMIT did not wait for its deferred work"
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM slow_commit")
        assert cursor.fetchall() == [(1,)]


def test_the_timeout_does_cut_an_ordinary_statement() -> None:
    """The control: the same timeout cancels a statement (so the test above could fail)."""
    from django.db import OperationalError

    with pytest.raises(OperationalError, match="statement timeout"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 100")
            cursor.execute("SELECT pg_sleep(0.4)")
