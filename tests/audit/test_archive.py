"""Audit retention (issue 16 part 4, ADR 1630): monthly partitions created ahead, months past
AUDIT_HOT_MONTHS archived to WORM as signed hash-linked segments and dropped, incremental
verify from the last checkpoint, --full over the archive, disputes answered from it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from audit import archive as archive_module
from audit.archive import ArchiveError, archive_audit_partitions, read_archived_events
from audit.checkpoints import audit_verify_with_checkpoints
from audit.models import AuditArchiveSegment
from audit.partitions import ensure_audit_partitions, list_partitions
from audit.services import audit_append
from core import worm as storage
from core.clock import FakeClock
from tests.conftest import owner_dsn

NUMBER = "+93700000042"


TEST_YEARS_FROM = datetime(2029, 1, 1, tzinfo=UTC)


def _reset_partitions() -> None:
    """Back to the migration's shape: no partition in the far-future years these tests use,
    and a MINVALUE partition (archive tests drop the legacy one) up to the first monthly one."""
    with psycopg.connect(owner_dsn(), autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        rows = conn.execute(
            "SELECT c.relname, (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]"
            "::timestamptz FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'audit_auditevent'::regclass"
        ).fetchall()
        for name, start in rows:
            if start is not None and start >= TEST_YEARS_FROM:
                conn.execute(f'DROP TABLE "{name}"')
        starts = [start for _, start in rows if start is not None and start < TEST_YEARS_FROM]
        if all(start is not None for _, start in rows):
            conn.execute(
                "CREATE TABLE audit_auditevent_p_legacy PARTITION OF audit_auditevent"
                " FOR VALUES FROM (MINVALUE) TO (%s)",
                [min(starts, default=TEST_YEARS_FROM)],
            )
            conn.execute("REVOKE ALL ON audit_auditevent_p_legacy FROM numbering_app, numbering_tenant")


@pytest.fixture(autouse=True)
def restore_partitions(committed: None) -> Iterator[None]:
    _reset_partitions()
    yield
    _reset_partitions()


def _append(count: int, *, object_id: str | None = None, start: int = 0) -> None:
    for i in range(start, start + count):
        with transaction.atomic():
            audit_append(
                actor="user:ops.olga", action="reserve", object_type="number",
                object_id=object_id or f"+9379{i:07d}", after={"state": "RESERVED", "i": i},
            )  # fmt: skip


def _partition_of(event_id: int) -> str:
    with psycopg.connect(owner_dsn()) as conn:
        return str(
            conn.execute("SELECT tableoid::regclass FROM audit_auditevent WHERE id = %s", [event_id]).fetchone()[0]
        )


def _names() -> set[str]:
    return {p.name for p in list_partitions()}


def test_partitions_are_created_ahead_idempotently_and_inserts_land_in_their_month(
    committed: None, fake_clock: FakeClock
) -> None:
    fake_clock.set(datetime(2031, 5, 10, 12, tzinfo=UTC))
    created = ensure_audit_partitions(ahead=3)
    assert created == [f"audit_auditevent_p2031{m:02d}" for m in (5, 6, 7, 8)]
    assert ensure_audit_partitions(ahead=3) == []
    assert REGISTRY.get_sample_value("numbering_audit_partition_months_ahead") == 3

    with transaction.atomic():
        event = audit_append(actor="system", action="reserve", object_type="number", object_id=NUMBER)
    fake_clock.set(datetime(2031, 6, 30, 23, 59, 59, tzinfo=UTC))
    with transaction.atomic():
        later = audit_append(actor="system", action="renew", object_type="number", object_id=NUMBER)
    assert _partition_of(event.id) == "audit_auditevent_p203105"
    assert _partition_of(later.id) == "audit_auditevent_p203106"


def test_a_partition_is_reachable_only_through_the_parent_and_stays_append_only(committed: None) -> None:
    from django.db import connection as app

    names = _names()
    assert "audit_auditevent_p_legacy" in names and len(names) > 1
    for name in names:  # the migration's legacy partition and the monthly ones alike
        with pytest.raises(Exception, match="permission denied"), transaction.atomic(), app.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608 (a partition name we listed)
    _append(1)
    with psycopg.connect(owner_dsn()) as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute("DELETE FROM audit_auditevent")


def test_the_next_months_partition_missing_is_visible_in_the_gauge(committed: None, fake_clock: FakeClock) -> None:
    from audit.tasks import audit_verify

    fake_clock.set(datetime(2040, 1, 5, tzinfo=UTC))
    ensure_audit_partitions(ahead=0)
    assert REGISTRY.get_sample_value("numbering_audit_partition_months_ahead") == 0
    ensure_audit_partitions(ahead=2)
    fake_clock.set(datetime(2040, 2, 5, tzinfo=UTC))
    # The daily verify (app role, in the long-running worker) reports it from the catalog.
    assert audit_verify()["ok"]
    assert REGISTRY.get_sample_value("numbering_audit_partition_months_ahead") == 1


def _aged_history(fake_clock: FakeClock) -> None:
    """Events in January and February 2030 (10 on NUMBER's chain), then time moves on to
    March 2031: January 2030 (and everything before) is past the 13 hot months."""
    fake_clock.set(datetime(2030, 1, 15, tzinfo=UTC))
    ensure_audit_partitions(ahead=2)
    _append(6)
    _append(3, object_id=NUMBER)
    fake_clock.set(datetime(2030, 2, 15, tzinfo=UTC))
    _append(4, start=6)
    _append(2, object_id=NUMBER)
    fake_clock.set(datetime(2031, 3, 10, tzinfo=UTC))
    ensure_audit_partitions(ahead=2)


def test_archive_round_trip_uploads_verifies_drops_and_answers_a_dispute(
    committed: None, worm_bucket: str, fake_clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _aged_history(fake_clock)
    call_command("verify_audit_chain")  # a checkpoint before the archive

    result = archive_audit_partitions()

    assert "audit_auditevent_p203001" in result.archived
    assert "audit_auditevent_p203001" not in _names() and "audit_auditevent_p203002" in _names()
    segment = AuditArchiveSegment.objects.using("owner").get(partition="audit_auditevent_p203001")
    assert segment.events == 9 and segment.dropped_at is not None
    head = storage.head(segment.object_key, segment.version_id)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] >= datetime(2038, 3, 9, tzinfo=UTC)
    assert archive_audit_partitions().archived == []  # idempotent
    # The admin's and the API's verify start at the archive's tail, not at a gap.
    from audit.services import audit_verify_chains

    verified = audit_verify_chains()
    assert verified.ok and verified.verified == 6

    capsys.readouterr()
    call_command("verify_audit_chain")
    out = capsys.readouterr().out
    assert "audit chain OK: 0 events verified" in out  # nothing new since the checkpoint
    call_command("verify_audit_chain", "--full")
    out = capsys.readouterr().out
    assert "audit archive OK: 9 events" in out
    assert "audit chain OK: 6 events verified" in out and "from archive" in out

    call_command("restore_audit_segment", "--period", "2030-01", "--number", NUMBER)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["object_id"] for e in lines] == [NUMBER] * 3
    assert [e["after"]["i"] for e in lines] == [0, 1, 2]
    with pytest.raises(ArchiveError, match="period: 2031-01 is not in the audit archive"):
        read_archived_events(period="2031-01")
    with pytest.raises(CommandError, match="period: '2030/01' must be YYYY-MM"):
        call_command("restore_audit_segment", "--period", "2030/01")


def _moto_key(bucket: str, key: str, version_id: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    versions = s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets[bucket].keys.getlist(key)
    return next(v for v in versions if v.version_id == version_id)


@pytest.mark.parametrize("tamper", ["segment bytes in the store", "manifest replaced and re-recorded"])
def test_a_tampered_archived_segment_is_detected_by_full_verify(
    committed: None, worm_bucket: str, fake_clock: FakeClock, tamper: str
) -> None:
    _aged_history(fake_clock)
    archive_audit_partitions()
    segment = AuditArchiveSegment.objects.using("owner").get(partition="audit_auditevent_p203001")
    if tamper == "segment bytes in the store":
        # Behind the Object Lock's back (the storage itself altered): one actor rewritten.
        stored = _moto_key(worm_bucket, segment.object_key, segment.version_id)
        stored.value = stored.value.replace(b"user:ops.olga", b"user:mallory", 1)
        expected = "segment audit_auditevent_p203001: reading s3://.* failed"
    else:
        # A new manifest version (the lock allows new versions) pointing at a forged segment,
        # and the ledger row pointed at it: the old signature no longer covers the content.
        body, _ = storage.open_object(segment.manifest_key, segment.manifest_version_id)
        manifest = json.loads(body.read())
        forged_segment = b""
        stored_segment = storage.put_locked(segment.object_key, forged_segment, content_type="application/x-ndjson")
        manifest.update(segment_version_id=stored_segment.version_id, events=0, chains={})
        forged = json.dumps(manifest).encode()
        stored = storage.put_locked(segment.manifest_key, forged, content_type="application/json")
        AuditArchiveSegment.objects.using("owner").filter(pk=segment.pk).update(
            manifest_version_id=stored.version_id, manifest_sha256=hashlib.sha256(forged).hexdigest()
        )
        expected = "segment audit_auditevent_p203001: .*manifest signature does not verify"

    call_command("verify_audit_chain")  # the daily run does not read the archive
    with pytest.raises(CommandError, match=expected):
        call_command("verify_audit_chain", "--full")
    with pytest.raises(CommandError):
        call_command("restore_audit_segment", "--period", "2030-01")


def test_a_segment_removed_from_the_ledger_breaks_the_links(
    committed: None, worm_bucket: str, fake_clock: FakeClock,
) -> None:  # fmt: skip
    _aged_history(fake_clock)
    fake_clock.set(datetime(2031, 4, 10, tzinfo=UTC))  # February 2030 is due too
    archive_audit_partitions()
    with psycopg.connect(owner_dsn()) as conn:
        conn.execute("DELETE FROM audit_auditarchivesegment WHERE partition = 'audit_auditevent_p203001'")
    with pytest.raises(CommandError, match="audit archive broken: segment audit_auditevent_p203002"):
        call_command("verify_audit_chain", "--full")


def test_a_crash_between_upload_and_drop_is_finished_by_the_next_run(
    committed: None, worm_bucket: str, fake_clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _aged_history(fake_clock)
    real_drop = archive_module._drop

    def crash(segment: AuditArchiveSegment) -> None:
        if segment.partition == "audit_auditevent_p203001":
            raise SystemExit("worker killed")
        real_drop(segment)

    monkeypatch.setattr(archive_module, "_drop", crash)
    with pytest.raises(SystemExit):
        archive_audit_partitions()
    segment = AuditArchiveSegment.objects.using("owner").get(partition="audit_auditevent_p203001")
    assert segment.dropped_at is None and "audit_auditevent_p203001" in _names()

    monkeypatch.setattr(archive_module, "_drop", real_drop)
    result = archive_audit_partitions()
    assert result.recovered == ["audit_auditevent_p203001"]
    assert "audit_auditevent_p203001" not in _names()
    assert AuditArchiveSegment.objects.using("owner").filter(partition="audit_auditevent_p203001").count() == 1
    call_command("verify_audit_chain", "--full")


def test_two_archive_runs_do_not_overlap(committed: None, worm_bucket: str, fake_clock: FakeClock) -> None:
    from core import locks

    _aged_history(fake_clock)
    with psycopg.connect(owner_dsn(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [locks.AUDIT_ARCHIVE, locks.key_for("archive")])
        assert archive_audit_partitions().skipped_locked
        assert "audit_auditevent_p203001" in _names()


def test_incremental_verify_reads_only_events_after_the_last_checkpoint(
    committed: None, worm_bucket: str, fake_clock: FakeClock
) -> None:
    fake_clock.set(datetime(2032, 3, 1, tzinfo=UTC))
    ensure_audit_partitions(ahead=1)
    _append(40)
    assert audit_verify_with_checkpoints().result.verified == 40
    fake_clock.advance(timedelta(days=1))
    _append(5, start=40)
    with CaptureQueriesContext(connection) as small:
        outcome = audit_verify_with_checkpoints()
    assert outcome.ok and outcome.result.verified == 5
    _append(200, start=45)
    audit_verify_with_checkpoints()
    fake_clock.advance(timedelta(days=1))
    _append(5, start=245)
    with CaptureQueriesContext(connection) as large:
        outcome = audit_verify_with_checkpoints()
    # Five times the history, the same five events read and the same number of queries.
    assert outcome.ok and outcome.result.verified == 5
    assert len(large.captured_queries) == len(small.captured_queries)
    reads = [q["sql"] for q in large.captured_queries if 'FROM "audit_auditevent"' in q["sql"]]
    # Point lookups of the checkpoint's heads, and one walk per chain from them: no scan of history.
    assert reads and all('"seq" = ' in sql or '"seq" > ' in sql for sql in reads)


def test_the_number_page_says_history_is_archived_and_fetches_it_for_the_auditor_only(
    committed: None, worm_bucket: str, fake_clock: FakeClock, client: Any
) -> None:
    from django.urls import reverse

    from core import authz as roles
    from tests.admin.conftest import staff_user
    from tests.factories import NumberFactory

    _aged_history(fake_clock)
    archive_audit_partitions()
    number = NumberFactory(number=NUMBER)
    client.force_login(staff_user("aud", roles.AUDITOR))
    page = client.get(reverse("admin:numbering_number_change", args=[number.pk])).content.decode()
    assert "Older history archived up to 2030-01" in page
    url = reverse("admin:numbering_number_archived_audit", args=[number.pk])
    assert url in page
    archived = client.get(url).content.decode()
    assert archived.count('class="archived-row"') == 3  # the January 2030 events; February is hot

    client.force_login(staff_user("rita", roles.REGULATOR_EXPORTER))
    assert client.get(url).status_code == 403


def test_a_month_whose_chain_does_not_verify_is_never_archived(
    committed: None, worm_bucket: str, fake_clock: FakeClock
) -> None:
    from tests.conftest import superuser_dsn

    _aged_history(fake_clock)
    with psycopg.connect(superuser_dsn()) as conn:
        conn.execute("SET session_replication_role = replica")  # past the append-only trigger
        conn.execute(
            "UPDATE audit_auditevent SET actor = 'user:mallory'"
            " WHERE id = (SELECT min(id) FROM audit_auditevent WHERE object_id = %s)",
            [NUMBER],
        )
    with pytest.raises(
        CommandError, match="audit_auditevent_p203001: refusing to archive a chain that does not verify"
    ):
        call_command("archive_audit_partitions")
    assert "audit_auditevent_p203001" in _names()
    assert not AuditArchiveSegment.objects.filter(partition="audit_auditevent_p203001").exists()
