"""The short failover drill against the real three-region stack (issue 14): etcd x3,
Patroni/PostgreSQL x3 with quorum commit, NATS x3, postgres_exporter x3 on loopback
(deploy/local-ha). One kill -9 of the primary under concurrent gRPC clients; the checker
must find the history linearizable and nothing lost, duplicated or forked. The full drill
(kill, pause, isolate, planted bug) is `make drill-failover`.

`make test` installs the stack's packages first (`make ha-install`)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from bench.ports import free_port

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("ha", REPO / "deploy" / "local-ha" / "ha.py")
assert _spec and _spec.loader
ha = importlib.util.module_from_spec(_spec)
sys.modules["ha"] = ha
_spec.loader.exec_module(ha)


def _keep_logs() -> None:
    """A failed drill's Patroni, etcd, NATS and exporter logs outlive the teardown."""
    keep = REPO / "bench" / "out" / "failover_drill" / "last-failed-short-drill"
    shutil.rmtree(keep, ignore_errors=True)
    for region in ha.REGIONS:
        if (region.dir / "log").is_dir():
            shutil.copytree(region.dir / "log", keep / region.name)


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    out = tmp_path_factory.mktemp("drill")
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL}
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "failover_drill" / "run.py"), "--short", "--keep-up", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        results = sorted(out.glob("result-short-*.json"))
        if proc.returncode != 0:
            _keep_logs()
        assert results, (
            f"the drill wrote no result (exit {proc.returncode}):\n{proc.stdout[-8000:]}{proc.stderr[-4000:]}"
        )
        result = json.loads(results[-1].read_text())
        result["exit_code"] = proc.returncode
        result["output"] = proc.stdout[-4000:]
        yield result
    finally:
        ha.down(clean=True)


def test_short_drill_one_kill_failover_is_linearizable_and_loses_nothing(drill: dict[str, Any]) -> None:
    assert drill["synchronous"] is True
    assert len(drill["failovers"]) == 1, drill["output"]
    failover = drill["failovers"][0]
    assert failover["nemesis"] == "kill"
    assert failover["new_leader"] and failover["new_leader"] != failover["region"]
    assert drill["operations"].get("ok", 0) > 20, "the clients did too little to prove anything"
    assert drill["linearizable"], drill["violations"]
    assert drill["audit_problems"] == []
    assert drill["event_problems"] == []
    assert failover["audit_chain_ok"], failover["audit_chain_output"]
    assert drill["audit_chain_ok"]
    assert failover["recovery_seconds"] is not None and failover["recovery_seconds"] < 30
    assert drill["exit_code"] == 0, drill["output"]


def test_the_hot_set_moves_to_fresh_numbers_after_the_failover(drill: dict[str, Any]) -> None:
    """Two generations of `numbers` (one before and during the kill, one after): each number's
    history stays small enough for the exhaustive search (ADR 1401)."""
    records = [json.loads(line) for line in Path(drill["history"]).read_text().splitlines()]
    initial = [r["key"] for r in records if r["type"] == "init"]
    assert len(initial) == 2 * drill["numbers"]
    first, second = set(initial[: drill["numbers"]]), set(initial[drill["numbers"] :])
    touched = [r for r in records if r["type"] == "invoke" and r["process"].startswith("c")]
    assert {r["key"] for r in touched} <= first | second
    assert {r["key"] for r in touched} & first and {r["key"] for r in touched} & second
    assert drill["undecided_keys"] == []


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("pg_replication_"):
            name_labels, value = line.rsplit(" ", 1)
            values[name_labels.split("{")[0]] = float(value)
    return values


def test_cross_region_lag_alert_reads_a_real_metric(drill: dict[str, Any]) -> None:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules" / "numbering.rules.yml").read_text())
    record = next(
        r
        for g in rules["groups"]
        for r in g["rules"]
        if r.get("record") == "numbering:cross_region_replication_lag_seconds:max"
    )
    assert "pg_replication_lag_seconds" in record["expr"] and "pg_replication_is_replica" in record["expr"]
    leader = ha.leader()
    assert leader is not None
    seen = {}
    for region in ha.REGIONS:
        metrics = _metrics(region.exporter_port)
        seen[region.name] = metrics
        assert "pg_replication_lag_seconds" in metrics, (region.name, metrics)
        assert metrics["pg_replication_is_replica"] == (0.0 if region == leader else 1.0)
        assert 0 <= metrics["pg_replication_lag_seconds"] < 10  # healthy standbys are not behind
    assert sum(m["pg_replication_is_replica"] for m in seen.values()) == 2


def test_nats_streams_are_replicated_on_three_nodes(drill: dict[str, Any]) -> None:
    data = ha.http_json(f"http://127.0.0.1:{ha.REGIONS[0].nats_http_port}/jsz?streams=1", timeout=5)
    streams = {s["name"]: s for a in data["account_details"] for s in a["stream_detail"]}
    assert "NUMBERING" in streams
    cluster = streams["NUMBERING"]["cluster"]
    assert cluster["leader"] and len(cluster["replicas"]) == 2  # leader + 2 replicas = R3
    assert data["meta_cluster"]["cluster_size"] == 3


def test_quorum_commit_is_configured(drill: dict[str, Any]) -> None:
    leader = ha.leader()
    assert leader is not None
    names = ha.psql(leader.pg_port, "SHOW synchronous_standby_names")
    assert names.startswith("ANY 1 (")  # one synchronous standby in quorum, either region
    config = ha.http_json(f"http://127.0.0.1:{leader.rest_port}/config", timeout=5)
    assert config["synchronous_mode"] == "quorum"
    assert config["synchronous_mode_strict"] is True
    assert config["synchronous_node_count"] == 1


def test_the_stack_is_one_cluster_with_one_writer(drill: dict[str, Any]) -> None:
    """Every PostgreSQL on the stack's ports shares one system identifier, and one accepts
    writes: no server left from an earlier run takes the service's connections (issue 14)."""
    assert ha.one_cluster()


def test_a_stray_server_on_the_stacks_ports_is_evicted_before_the_stack_starts() -> None:
    port = free_port()
    stray = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen(); time.sleep(60)",
        ]
    )
    try:
        deadline = time.monotonic() + 10
        while stray.pid not in ha.listeners({port}) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ha.listeners({port}) == {stray.pid: port}
        ha.evict_strays({port})
        assert stray.wait(5) == -9
        assert ha.listeners({port}) == {}
    finally:
        if stray.poll() is None:
            stray.kill()


def test_a_reused_pid_is_not_taken_for_one_of_the_stacks_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed Patroni's pid is soon another process's (pid_max 32768, a backend forked per
    connection). Taken for Patroni, the kill nemesis would not restart the region; taken for
    a postmaster, a stranger would be killed or frozen in its place."""
    monkeypatch.setattr(ha, "HA_DIR", tmp_path)
    region = ha.REGIONS[0]
    pgdata = region.dir / "pgdata"
    pgdata.mkdir(parents=True)
    stranger = subprocess.Popen(["sleep", "30"])
    postmaster = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], cwd=pgdata)
    children: list[str] = []
    try:
        pidfile = ha._pidfile(region, "patroni")
        pidfile.write_text(f"{stranger.pid} 1")  # the pid of a process started at another time
        assert ha.pid_of(region, "patroni") is None
        pidfile.write_text(f"{stranger.pid} {ha._started_at(stranger.pid)}")
        assert ha.pid_of(region, "patroni") == stranger.pid

        (pgdata / "postmaster.pid").write_text(f"{stranger.pid}\n{pgdata}\n")
        assert ha.postmaster_pid(region) is None  # not working in this pgdata
        (pgdata / "postmaster.pid").write_text(f"{postmaster.pid}\n{pgdata}\n")
        assert ha.postmaster_pid(region) == postmaster.pid
        deadline = time.monotonic() + 5
        while not children and time.monotonic() < deadline:
            children = Path(f"/proc/{postmaster.pid}/task/{postmaster.pid}/children").read_text().split()
            time.sleep(0.02)
        (pgdata / "postmaster.pid").write_text(f"{children[0]}\n{pgdata}\n")
        assert ha.postmaster_pid(region) is None  # a child of the postmaster, not the postmaster
        # Killing the node takes every process working in its pgdata, the children too.
        assert {postmaster.pid, int(children[0])} <= set(ha.node_pids(region))
        pidfile.unlink()
        ha.kill_node(region)
        assert not ha._alive(postmaster.pid) and not ha._alive(int(children[0]))  # (kill_node reaps)
        assert stranger.poll() is None
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), 9)
        for proc in (stranger, postmaster):
            proc.kill()
            proc.wait()
