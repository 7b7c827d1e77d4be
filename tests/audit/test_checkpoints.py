"""Audit checkpoints on WORM storage: a chain rewritten consistently from genesis is caught
by the checkpoints taken before the rewrite."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from prometheus_client import REGISTRY

from audit.checkpoints import CHAIN_BROKEN_EVENT, load_checkpoints
from audit.hashing import chain_hash, event_body
from audit.models import GENESIS_HASH
from audit.services import audit_append, audit_verify_chains
from core import worm as storage
from core.models import OutboxEvent
from tests.conftest import superuser_dsn
from tests.s3server import free_port


def _append_events(count: int = 12) -> None:
    for i in range(count):
        with transaction.atomic():
            audit_append(
                actor="user:ops.olga", action="reserve", object_type="number", object_id=f"+9379{i:07d}",
                before={"state": "AVAILABLE"}, after={"state": "RESERVED", "i": i},
            )  # fmt: skip


def _rewrite_everything(*, consistent: bool) -> None:
    """As a database superuser: change the first event of every chain, and (if consistent)
    recompute every hash after it so each chain verifies on its own."""
    with psycopg.connect(superuser_dsn()) as conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # no append-only trigger
        cur.execute("SELECT DISTINCT chain FROM audit_auditevent ORDER BY chain")
        for (chain,) in cur.fetchall():
            cur.execute(
                "SELECT id, seq, occurred_at, actor, action, object_type, object_id, tenant_id, request_id, before,"
                " after FROM audit_auditevent WHERE chain = %s ORDER BY seq",
                [chain],
            )
            prev = GENESIS_HASH
            for index, (pk, seq, at, actor, action, otype, oid, tenant, rid, before, after) in enumerate(
                cur.fetchall()
            ):
                if index == 0:
                    actor = "user:mallory"
                if not consistent and index > 0:
                    break
                body = event_body(
                    chain=chain, seq=seq, occurred_at=at, actor=actor, action=action, object_type=otype,
                    object_id=oid, tenant_id=str(tenant) if tenant else None, request_id=rid,
                    before=before, after=after,
                )  # fmt: skip
                digest = chain_hash(prev, body)
                if consistent:
                    conn.execute(
                        "UPDATE audit_auditevent SET actor = %s, prev_hash = %s, hash = %s WHERE id = %s",
                        [actor, prev, digest, pk],
                    )
                else:
                    conn.execute("UPDATE audit_auditevent SET actor = %s WHERE id = %s", [actor, pk])
                prev = digest
            if consistent:
                conn.execute("UPDATE audit_chainhead SET hash = %s WHERE chain = %s", [prev, chain])
        conn.commit()


def _gauge() -> float | None:
    return REGISTRY.get_sample_value("numbering_audit_chain_ok")


def test_clean_chain_exits_0_and_stores_a_signed_locked_checkpoint(
    committed: None, worm_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _append_events()
    call_command("verify_audit_chain")
    out = capsys.readouterr().out
    assert "audit chain OK: 12 events verified" in out and "checked against 0 checkpoint(s)" in out
    checkpoints, bad = load_checkpoints()
    assert len(checkpoints) == 1 and not bad
    assert f"new checkpoint: {checkpoints[0].key}" in out and checkpoints[0].key.startswith("audit-checkpoints/")
    heads = {h["chain"]: h["seq"] for h in checkpoints[0].document["chains"]}
    assert sum(heads.values()) == 12
    meta = storage.head(checkpoints[0].key)
    assert meta["ObjectLockMode"] == "COMPLIANCE"
    assert _gauge() == 1.0

    _append_events(3)
    call_command("verify_audit_chain")
    assert "checked against 1 checkpoint(s)" in capsys.readouterr().out
    assert len(load_checkpoints()[0]) == 2


def test_consistent_full_rewrite_is_reported_citing_the_checkpoint(
    committed: None, worm_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _append_events()
    call_command("verify_audit_chain")
    (checkpoint,), _ = load_checkpoints()
    capsys.readouterr()

    _rewrite_everything(consistent=True)
    assert audit_verify_chains().ok  # the rewritten chain is internally consistent
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit_chain")
    assert excinfo.value.returncode == 1
    assert f"contradicts checkpoint {checkpoint.key}" in str(excinfo.value)
    assert "audit chain broken: chain" in str(excinfo.value)
    assert _gauge() == 0.0
    event = OutboxEvent.objects.get(event_type=CHAIN_BROKEN_EVENT)
    assert event.envelope["data"]["checkpoint"] == checkpoint.key
    assert len(load_checkpoints()[0]) == 1  # no checkpoint of a broken chain


def test_inconsistent_tamper_names_the_chain_and_sequence(
    committed: None, worm_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _append_events()
    _rewrite_everything(consistent=False)
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit_chain")
    assert excinfo.value.returncode == 1
    assert "first break in chain" in str(excinfo.value) and "at seq 1" in str(excinfo.value)
    assert load_checkpoints() == ([], [])
    assert OutboxEvent.objects.filter(event_type=CHAIN_BROKEN_EVENT).count() == 1


def test_forged_checkpoint_is_a_break(committed: None, worm_bucket: str) -> None:
    _append_events(2)
    call_command("verify_audit_chain")
    (checkpoint,), _ = load_checkpoints()
    forged = dict(checkpoint.document, created_at="2000-01-01T00:00:00+00:00")
    storage.put_locked(
        "audit-checkpoints/0000/forged.json", json.dumps(forged).encode(), content_type="application/json"
    )
    # The daily (incremental) verify reads only the newest checkpoint; --full reads them all.
    with pytest.raises(CommandError, match="forged.json is not valid: checkpoint signature does not verify"):
        call_command("verify_audit_chain", "--full")
    newest = dict(checkpoint.document, created_at="2999-01-01T00:00:00+00:00")
    storage.put_locked(
        "audit-checkpoints/9999/forged.json", json.dumps(newest).encode(), content_type="application/json"
    )
    with pytest.raises(CommandError, match="9999/forged.json is not valid: checkpoint signature does not verify"):
        call_command("verify_audit_chain")


def test_without_checkpoint_storage_the_chain_is_still_verified(
    committed: None, worm_bucket: str, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _append_events(3)
    settings.AUDIT_CHECKPOINTS = False
    call_command("verify_audit_chain")
    captured = capsys.readouterr()
    assert "audit chain OK: 3 events verified" in captured.out and "AUDIT_CHECKPOINTS is off" in captured.err

    settings.AUDIT_CHECKPOINTS = True
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    call_command("verify_audit_chain")
    captured = capsys.readouterr()
    assert "audit chain OK: 3 events verified" in captured.out
    assert "checkpoint storage unavailable" in captured.err
