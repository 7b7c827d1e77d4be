"""The hash-chained audit trail: append, verify, and detect tampering."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from audit.models import AuditEvent, ChainHead
from audit.services import audit_append, audit_verify_chains
from core.rls import rls_scope
from numbering import services
from numbering.lifecycle import State
from tests.conftest import owner_dsn, superuser_dsn
from tests.numbering.helpers import OPS, number_in

pytestmark = pytest.mark.usefixtures("committed")


def _history(alice: Any, n: int = 3) -> list[str]:
    numbers = []
    for _ in range(n):
        number = number_in(State.ASSIGNED, alice)
        services.number_release(number=number.number, actor=OPS)
        numbers.append(number.number)
    return numbers


def test_events_chain_by_hash_with_gapless_sequences(alice: Any) -> None:
    _history(alice)
    for head in ChainHead.objects.all():
        events = list(AuditEvent.objects.filter(chain=head.chain).order_by("seq"))
        assert [e.seq for e in events] == list(range(1, head.seq + 1))
        for prev, event in zip(events, events[1:], strict=False):
            assert event.prev_hash == prev.hash
        assert events[-1].hash == head.hash


def test_a_clean_chain_verifies_and_the_command_exits_0(alice: Any, capsys: Any) -> None:
    _history(alice)
    result = audit_verify_chains()
    assert result.ok and result.verified == AuditEvent.objects.count() == 9
    call_command("verify_audit_chain")
    assert "9 events verified" in capsys.readouterr().out


def test_a_row_changed_behind_the_services_back_is_reported_at_its_chain_and_seq(alice: Any) -> None:
    _history(alice)
    victim = AuditEvent.objects.order_by("chain", "seq")[1]
    with psycopg.connect(superuser_dsn(), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # superuser: triggers off
        conn.execute("UPDATE audit_auditevent SET actor = 'user:mallory' WHERE id = %s", [victim.id])

    result = audit_verify_chains()
    assert not result.ok
    assert (result.breaks[0].chain, result.breaks[0].seq) == (victim.chain, victim.seq)
    with pytest.raises(CommandError) as failed:
        call_command("verify_audit_chain")
    assert failed.value.returncode == 1
    assert f"chain {victim.chain} at seq {victim.seq}" in str(failed.value)


def test_a_deleted_event_is_a_sequence_gap(alice: Any) -> None:
    _history(alice)
    victim = AuditEvent.objects.order_by("chain", "seq")[0]
    with psycopg.connect(superuser_dsn(), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM audit_auditevent WHERE id = %s", [victim.id])
    breaks = audit_verify_chains().breaks
    assert breaks and (breaks[0].chain, breaks[0].seq) == (victim.chain, victim.seq)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_auditevent SET actor = 'x'", "DELETE FROM audit_auditevent", "TRUNCATE audit_auditevent"],
)
def test_the_trigger_refuses_changes_even_for_the_table_owner(alice: Any, statement: str) -> None:
    _history(alice, 1)
    with psycopg.connect(owner_dsn()) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement)


@pytest.mark.parametrize("statement", ["UPDATE audit_auditevent SET actor = 'x'", "DELETE FROM audit_auditevent"])
def test_the_app_role_may_only_insert_and_select(alice: Any, statement: str) -> None:
    from django.db import connection

    _history(alice, 1)
    with pytest.raises(Exception, match="permission denied"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)


def test_audit_append_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError):
        audit_append(actor="system", action="x", object_type="t", object_id="1")


def test_a_rolled_back_change_leaves_no_audit_event() -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic(), rls_scope(platform=True):
        audit_append(actor="system", action="x", object_type="t", object_id="1")
        1 / 0  # noqa: B018
    assert not AuditEvent.objects.exists()
