"""Jepsen-style failover drill (issue 14, ADR 1401): concurrent gRPC clients on a hot set of
numbers, nemeses against the three-region stack (deploy/local-ha), then a checker.

    .venv/bin/python bench/failover_drill/run.py --short            # make test: 1 kill -9
    .venv/bin/python bench/failover_drill/run.py --rounds 5          # kill, pause, isolate x5
    .venv/bin/python bench/failover_drill/run.py --planted-bug       # async replication

Clients (threads, one gRPC channel each) run Reserve / Assign / Release / Recall on a few
numbers for several tenants; a janitor ends quarantines (test numbers cool off at once) so
the numbers keep cycling. The hot set rotates: each nemesis round (its settle time, the
fault, the recovery) gets `--numbers` fresh numbers, as Jepsen's `jepsen.independent` moves
its clients onto new keys. Contention per number stays the same, but one number's history
stays at a size the exhaustive search decides (ADR 1401). Every operation is written to a
history file (JSON lines) with monotonic invoke/complete times; an UNAVAILABLE / deadline
outcome is retried with the same idempotency key for a few seconds and otherwise recorded
as `info` (unknown).

Checks (checker.py + below): per-number linearizability (WGL), holder never switches
tenant without passing through a free state (audit trail), every acknowledged change is
in the audit trail of the surviving primary, verify_audit_chain after every failover,
every committed change's event on NATS exactly once and in version order. Reports the
recovery time (first failed write -> first acknowledged write) per failover.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]
# This process runs gRPC client threads and forks daemons (Patroni after a kill -9, the
# nemeses' tools). gRPC's fork handlers then run in the child before its exec and can abort
# it ("Mutex::Fer while waiting on Condition", grpc/grpc#32992): twice a killed region's
# Patroni never came back, and the drill stopped. We always exec after fork, which is the
# case gRPC documents this switch for. Set before grpc is imported.
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"

import checker  # noqa: E402

from bench.ports import free_port  # noqa: E402


def _load_ha() -> Any:
    spec = importlib.util.spec_from_file_location("ha", REPO / "deploy" / "local-ha" / "ha.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["ha"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ha = _load_ha()
RUN_ID = uuid.uuid4().hex[:12]
DEFINITE_REFUSALS = {"NOT_AVAILABLE", "INVALID_TRANSITION", "WRONG_TENANT", "RESERVATION_EXPIRED"}
WEIGHTS = {"reserve": 4, "assign": 3, "release": 3, "recall": 1}


def log(msg: str) -> None:
    print(f"[drill {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class History:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w")
        self._lock = threading.Lock()
        self._next = 0

    def write(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._file.write(json.dumps(record) + "\n")

    def invoke(self, process: str, key: str, f: str, tenant: str | None) -> int:
        with self._lock:
            op_id, self._next = self._next, self._next + 1
            rec = {"type": "invoke", "id": op_id, "process": process, "key": key, "f": f, "tenant": tenant}
            rec["t"] = time.monotonic()
            self._file.write(json.dumps(rec) + "\n")
        return op_id

    def complete(self, op_id: int, outcome: str, value: Any = None, error: str = "") -> None:
        self.write({"type": outcome, "id": op_id, "t": time.monotonic(), "value": value, "error": error})

    def close(self) -> None:
        with self._lock:
            self._file.close()


# --- the system under test ------------------------------------------------------------------


def service_env() -> dict[str, str]:
    return {
        **os.environ,
        **ha.service_env(),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "GRPC_INSECURE": "1",
        # A fresh connection per unit of work: a connection to a frozen or cut-off primary
        # is never reused, and libpq re-resolves the read-write host each time (ADR 1400).
        "DATABASE_CONN_MAX_AGE": "0",
        "GRPC_DB_THREADS": "32",
        "OUTBOX_RELAY_POLL_SECONDS": "1",
        "GRPC_GRACE_SECONDS": "2",
        # Each drill recreates the database: its signed audit checkpoints must not meet those
        # of an earlier run in the same bucket (verify_audit_chain would call that chain
        # rewritten — a false BROKEN; seen in the chaos postgres-failover drill).
        "AUDIT_CHECKPOINT_PREFIX": f"audit-checkpoints-drill-{RUN_ID}",
    }


def start_process(argv: list[str], logfile: Path) -> subprocess.Popen[bytes]:
    out = logfile.open("ab")
    proc = subprocess.Popen(argv, cwd=REPO, env=service_env(), stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return proc


def seed(tenants: int, numbers: int) -> tuple[list[str], list[str]]:
    from django.db import transaction

    from core.rls import rls_scope
    from numbering.models import QuarantinePolicy
    from tests.factories import InventoryPoolFactory, IssuerFactory, NumberFactory, TenantPoolFactory

    issuer = IssuerFactory()
    pool = InventoryPoolFactory()
    run = uuid.uuid4().hex[:6]
    tenant_ids = []
    for _ in range(tenants):
        tp = TenantPoolFactory(quota_msisdn=10_000, reservation_ttl_seconds=86_400, default_lease_days=3650)
        tenant_ids.append(str(tp.tenant_id))
    with transaction.atomic(), rls_scope(platform=True):
        QuarantinePolicy.objects.update_or_create(case=QuarantinePolicy.Case.TEST, defaults={"days": 0})
    base = random.randint(1_000_000, 8_999_999)
    keys = []
    for i in range(numbers):
        number = NumberFactory(number=f"+9379{(base + i) % 10_000_000:07d}", issuer=issuer, pool=pool, is_test=True)
        keys.append(number.number)
    log(f"seeded run {run}: {tenants} tenants, {numbers} numbers")
    return tenant_ids, keys


def initial_states(keys: list[str]) -> dict[str, checker.State]:
    from django.db import transaction

    from core.rls import rls_scope
    from numbering.models import Number

    with transaction.atomic(), rls_scope(platform=True):
        rows = Number.objects.filter(number__in=keys)
        return {r.number: (r.state, str(r.tenant_id) if r.tenant_id else None, r.version) for r in rows}


def fresh_connection() -> None:
    """The drill's own process keeps no connection across a failover (the service does the same
    with DATABASE_CONN_MAX_AGE=0): the next query re-resolves the read-write host."""
    from django.db import connections

    connections.close_all()


# --- clients ----------------------------------------------------------------------------------


@dataclass
class Failover:
    nemesis: str
    region: str
    started: float
    new_leader: str = ""
    recovery_seconds: float | None = None
    first_failed_write: float | None = None
    first_ok_write: float | None = None
    audit_chain_ok: bool | None = None
    audit_chain_output: str = ""
    # The old primary could not rejoin by itself and was rebuilt from the leader (reinit).
    # Not a safety failure (the checker judges that), but an operator would be paged: counted.
    rejoin_needed_reinit: bool = False


class HotSet:
    """The numbers the clients work on now: one generation per nemesis round, the last one
    for the final settle. Advancing swaps the list in one assignment; an operation already
    in flight on the old generation completes there."""

    def __init__(self, keys: list[str], per_generation: int) -> None:
        self.all = keys
        self.per_generation = per_generation
        self.generation = 0

    @property
    def generations(self) -> int:
        return len(self.all) // self.per_generation

    @property
    def current(self) -> list[str]:
        start = self.generation * self.per_generation
        return self.all[start : start + self.per_generation]

    def advance(self) -> None:
        self.generation = min(self.generation + 1, self.generations - 1)


class Client(threading.Thread):
    def __init__(
        self,
        name: str,
        target: str,
        history: History,
        hot: HotSet,
        tenants: list[str],
        stop: threading.Event,
        *,
        deadline: float,
        retry_for: float,
    ) -> None:  # noqa: E501
        super().__init__(name=name, daemon=True)
        import grpc

        from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
        from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc

        self.grpc, self.pb = grpc, pb
        self.stub = pb_grpc.NumberingServiceStub(grpc.insecure_channel(target))
        self.history, self.hot, self.tenants, self.stop = history, hot, tenants, stop
        self.deadline, self.retry_for = deadline, retry_for
        self.rng = random.Random(name)

    def run(self) -> None:
        fs, weights = list(WEIGHTS), list(WEIGHTS.values())
        while not self.stop.is_set():
            f = self.rng.choices(fs, weights)[0]
            key = self.rng.choice(self.hot.current)
            tenant = None if f == "recall" else self.rng.choice(self.tenants)
            self.one(f, key, tenant)

    def request(self, f: str, key: str, tenant: str | None, idem: str) -> Any:
        pb, stub = self.pb, self.stub
        if f == "reserve":
            return stub.Reserve, pb.ReserveRequest(number=key, tenant_id=tenant, idempotency_key=idem)
        if f == "assign":
            return stub.Assign, pb.AssignRequest(number=key, tenant_id=tenant, idempotency_key=idem)
        if f == "release":
            return stub.Release, pb.ReleaseRequest(number=key, tenant_id=tenant, idempotency_key=idem)
        return stub.Recall, pb.RecallRequest(number=key, reason="drill", idempotency_key=idem)

    def one(self, f: str, key: str, tenant: str | None) -> None:
        grpc = self.grpc
        op_id = self.history.invoke(self.name, key, f, tenant)
        method, req = self.request(f, key, tenant, f"drill-{uuid.uuid4()}")
        started = time.monotonic()
        last = ""
        while True:
            try:
                resp = method(req, timeout=self.deadline)
            except grpc.RpcError as exc:
                code = exc.code()
                reason = _reason(exc)
                if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL):
                    last = f"{code.name}:{reason}"
                    if time.monotonic() - started < self.retry_for and not self.stop.is_set():
                        time.sleep(0.25)
                        continue  # same idempotency key: replays or performs once
                    self.history.complete(op_id, "info", error=last)
                    return
                outcome = "fail" if reason in DEFINITE_REFUSALS and "kept changing" not in exc.details() else "info"
                self.history.complete(op_id, outcome, error=f"{code.name}:{reason}")
                return
            n = resp.number
            value = [self.pb.NumberState.Name(n.state), n.tenant_id or None, n.version]
            self.history.complete(op_id, "ok", value=value)
            return


def _reason(exc: Any) -> str:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(exc)
    except Exception:  # noqa: BLE001
        return ""
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


class Janitor(threading.Thread):
    """Ends quarantines (0 days for test numbers) through the service layer, recorded as
    operations like any client's, so numbers keep cycling through the hot set."""

    def __init__(self, history: History, hot: HotSet, stop: threading.Event) -> None:
        super().__init__(name="janitor", daemon=True)
        self.history, self.hot, self.stop = history, hot, stop
        self.rng = random.Random("janitor")

    def run(self) -> None:
        from django.db import close_old_connections

        from core import errors
        from numbering import services

        while not self.stop.is_set():
            key = self.rng.choice(self.hot.current)
            op_id = self.history.invoke("janitor", key, "end_quarantine", None)
            close_old_connections()
            try:
                result = services.number_end_quarantine(number=key)
            except errors.DomainError as exc:
                definite = exc.code in DEFINITE_REFUSALS and "kept changing" not in exc.message
                self.history.complete(op_id, "fail" if definite else "info", error=exc.code)
            except Exception as exc:  # noqa: BLE001 - database gone: outcome unknown
                from django.db import connection

                connection.close_if_unusable_or_obsolete()
                self.history.complete(op_id, "info", error=type(exc).__name__)
                self.stop.wait(1.0)
            else:
                n = result.number
                self.history.complete(op_id, "ok", value=[n["state"], n["tenant_id"], n["version"]])
            finally:
                close_old_connections()
            self.stop.wait(0.2)


# --- nemeses ------------------------------------------------------------------------------------


def wait_leader(old: Any | None, timeout: float = 90) -> Any:
    def check() -> Any:
        lead = ha.leader()
        return lead if lead is not None and lead != old else None

    return ha.wait_for("a new leader", check, timeout=timeout, interval=0.2)


def walsender_pids(region: Any) -> list[int]:
    out = []
    for pid in ha.node_pids(region):
        try:
            if b"walsender" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
        except OSError:
            pass
    return out


def nemesis(kind: str, *, synchronous: bool) -> Failover:
    primary = ha.leader()
    assert primary is not None, "no leader before the nemesis"
    fo = Failover(kind, primary.name, time.monotonic())
    log(f"nemesis {kind} on {primary.name} (primary)")
    if kind == "kill":
        ha.kill_node(primary)
        fo.new_leader = wait_leader(primary).name
        ha.start_node(primary)
    elif kind == "lagkill":
        # Build replication lag first (freeze the primary's WAL senders: the WAL never leaves
        # it), then kill -9 the whole node. With quorum commit nothing commits meanwhile; with
        # async replication the primary acknowledges commits no standby has: the planted bug
        # loses them.
        senders = walsender_pids(primary)
        for pid in senders:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(2.0)
        fo.started = time.monotonic()
        pids = ha.node_pids(primary)
        ha.kill_node(primary)
        for pid in set(pids) | set(senders):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        fo.new_leader = wait_leader(primary).name
        ha.start_node(primary)
    elif kind == "pause":
        pids = ha.pause_node(primary)
        time.sleep(ha.TTL + 5)  # longer than the leader TTL: the others elect a new leader
        try:
            fo.new_leader = wait_leader(primary, timeout=30).name
        finally:
            ha.resume_pids(pids)  # the zombie wakes up; Patroni must demote it
    elif kind == "isolate":
        ha.isolate(primary)
        try:
            fo.new_leader = wait_leader(primary).name
            time.sleep(5)
        finally:
            ha.heal()
    else:
        raise ValueError(kind)
    log(f"  new leader {fo.new_leader}; waiting for 3 healthy members")
    fo.rejoin_needed_reinit = ha.wait_healthy("cluster healthy again", synchronous=synchronous, timeout=180)
    return fo


def verify_audit_chain() -> tuple[bool, str]:
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "manage.py", "verify_audit_chain"],
        cwd=REPO,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()[-400:]


# --- checks after the run -------------------------------------------------------------------------


def recovery_times(history_path: Path, failovers: list[Failover], retry_for: float) -> None:
    """Per failover: from the first write that failed (its invoke; it ended unknown after
    retrying for `retry_for` s) to the first write invoked after it that was acknowledged."""
    invokes: dict[int, dict[str, Any]] = {}
    writes = []
    for line in history_path.read_text().splitlines():
        rec = json.loads(line)
        if rec["type"] == "invoke":
            invokes[rec["id"]] = rec
        elif rec["type"] in ("ok", "fail", "info") and invokes.get(rec["id"], {}).get("f") in WEIGHTS:
            writes.append((invokes[rec["id"]]["t"], rec["t"], rec["type"]))
    for i, fo in enumerate(failovers):
        end = failovers[i + 1].started if i + 1 < len(failovers) else float("inf")
        failed = [inv for inv, done, outcome in writes if outcome == "info" and fo.started - retry_for <= done < end]
        if not failed:
            fo.recovery_seconds = 0.0
            continue
        first_failed = max(min(failed), fo.started)
        oks = [done for inv, done, outcome in writes if outcome == "ok" and inv >= first_failed and done < end]
        if oks:
            fo.first_failed_write, fo.first_ok_write = first_failed, min(oks)
            fo.recovery_seconds = round(min(oks) - first_failed, 2)


def audit_events(keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    from django.db import transaction

    from audit.models import AuditEvent
    from core.rls import rls_scope

    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    fresh_connection()
    with transaction.atomic(), rls_scope(platform=True):
        for ev in AuditEvent.objects.filter(object_type="number", object_id__in=keys).order_by("chain", "seq"):
            out[ev.object_id].append({"before": ev.before, "after": ev.after, "action": ev.action})
    return out


def check_audit(
    keys: list[str], acked: dict[str, dict[int, tuple[str, str | None]]]
) -> tuple[list[str], dict[str, list[int]], list[str]]:
    """From the audit trail of the surviving primary, per number, ordered by the version each
    change produced: no version twice (fork), none missing (gap), never straight from one
    tenant to another (two holders), and every acknowledged change there with the state and
    holder the client was told. Notes (not violations): events whose `before` snapshot is
    older than the row the CAS replaced (the CAS matched on state; see the report)."""
    problems: list[str] = []
    notes: list[str] = []
    versions: dict[str, list[int]] = {}
    for key, events in audit_events(keys).items():
        rows = sorted(events, key=lambda e: e["after"]["number"]["version"])
        seen = [e["after"]["number"]["version"] for e in rows]
        versions[key] = seen
        if len(seen) != len(set(seen)):
            problems.append(f"{key}: audit trail has two changes with the same version (fork): {seen}")
        missing = sorted(set(range(min(seen), max(seen) + 1)) - set(seen)) if seen else []
        if missing:
            problems.append(f"{key}: audit trail misses version(s) {missing} (gap)")
        for prev, nxt in zip(rows, rows[1:], strict=False):
            a, b = prev["after"]["number"].get("tenant_id"), nxt["after"]["number"].get("tenant_id")
            if a and b and a != b:
                problems.append(
                    f"{key}: v{nxt['after']['number']['version']} went from tenant {a} to {b} without being freed"
                )
            if nxt["before"]["version"] != prev["after"]["number"]["version"]:
                notes.append(
                    f"{key}: change to v{nxt['after']['number']['version']} recorded before=v{nxt['before']['version']}"
                )
        by_version = {e["after"]["number"]["version"]: e["after"]["number"] for e in rows}
        for version, (state, holder) in sorted(acked.get(key, {}).items()):
            got = by_version.get(version)
            if got is None or (got["state"], got.get("tenant_id") or None) != (state, holder):
                found = None if got is None else (got["state"], got.get("tenant_id"))
                problems.append(
                    f"{key}: acknowledged change v{version} ({state}, {holder}) lost: the surviving primary has {found}"
                )
    return problems, versions, notes


def check_events(keys: list[str], versions: dict[str, list[int]], timeout: float = 60) -> list[str]:
    """Every committed change's event on NATS exactly once, in version order per number."""
    from django.db import transaction

    from core.models import OutboxEvent
    from core.rls import rls_scope

    def drained() -> bool:
        fresh_connection()
        with transaction.atomic(), rls_scope(platform=True):
            return not OutboxEvent.objects.filter(aggregate_id__in=keys, published_at__isnull=True).exists()

    ha.wait_for("the outbox relay to publish everything", drained, timeout=timeout, interval=1)

    async def read() -> dict[str, list[int]]:
        import nats

        nc = await nats.connect(ha.nats_url().split(","), connect_timeout=2)
        try:
            js = nc.jetstream()
            info = await js.stream_info("NUMBERING")
            seen: dict[str, list[int]] = defaultdict(list)
            wanted = set(keys)
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await js.get_msg("NUMBERING", seq)
                except Exception:  # noqa: BLE001 - deleted / purged sequence
                    continue
                env = json.loads(msg.data or b"{}")
                if env.get("subject") in wanted and env.get("sequence") is not None:
                    seen[env["subject"]].append(int(env["sequence"]))
            return seen
        finally:
            await nc.close()

    seen = asyncio.run(read())
    problems = []
    for key in keys:
        got, want = seen.get(key, []), versions.get(key, [])
        if len(got) != len(set(got)):
            problems.append(f"{key}: an event was published twice: {got}")
        if got != sorted(got):
            problems.append(f"{key}: events out of version order on NATS: {got}")
        if sorted(set(got)) != sorted(want):
            problems.append(f"{key}: NATS has versions {sorted(set(got))}, the audit trail {sorted(want)}")
    return problems


# --- main --------------------------------------------------------------------------------------------


@dataclass
class Result:
    mode: str
    synchronous: bool
    clients: int
    tenants: int
    numbers: int
    duration_seconds: float
    operations: dict[str, int] = field(default_factory=dict)
    failovers: list[dict[str, Any]] = field(default_factory=list)
    linearizable: bool = False
    violations: list[dict[str, Any]] = field(default_factory=list)
    undecided_keys: list[str] = field(default_factory=list)
    audit_problems: list[str] = field(default_factory=list)
    audit_notes: list[str] = field(default_factory=list)
    event_problems: list[str] = field(default_factory=list)
    audit_chain_ok: bool = False
    history: str = ""

    @property
    def total_violations(self) -> int:
        chain_breaks = sum(1 for f in self.failovers if f.get("audit_chain_ok") is False)
        return len(self.violations) + len(self.audit_problems) + len(self.event_problems) + chain_breaks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="failover drill")
    parser.add_argument("--short", action="store_true", help="one kill -9, a handful of clients (make test)")
    parser.add_argument("--planted-bug", action="store_true", help="async replication + lag + kill -9")
    parser.add_argument("--rounds", type=int, default=5, help="times each nemesis runs")
    parser.add_argument("--nemeses", default="kill,pause,isolate")
    parser.add_argument("--clients", type=int, default=15)
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--numbers", type=int, default=6, help="hot numbers at a time (fresh ones every round)")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds of normal traffic between nemeses")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "failover_drill")
    parser.add_argument("--keep-up", action="store_true", help="leave the stack running afterwards")
    args = parser.parse_args(argv)
    if args.short:
        args.rounds, args.nemeses, args.clients = 1, "kill", min(args.clients, 6)
    if args.planted_bug:
        args.nemeses = "lagkill"
    synchronous = not args.planted_bug
    mode = "planted-bug" if args.planted_bug else ("short" if args.short else "full")
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    history_path = args.out / f"history-{mode}-{stamp}.jsonl"

    ha.up(fresh=True, synchronous=synchronous)
    os.environ.update(ha.service_env())
    os.environ["DATABASE_CONN_MAX_AGE"] = "0"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    import django

    django.setup()

    rounds = len(args.nemeses.split(",")) * args.rounds
    tenants, keys = seed(args.tenants, args.numbers * (rounds + 1))
    history = History(history_path)
    for key, value in initial_states(keys).items():
        history.write({"type": "init", "key": key, "value": list(value)})

    port = free_port()
    logs = args.out / f"service-{mode}-{stamp}.log"
    python = str(REPO / ".venv" / "bin" / "python")
    grpc_proc = start_process(
        [python, "manage.py", "grpcserver", "--workers", "1", "--port", str(port), "--metrics-port", "0"], logs
    )
    relay_proc = start_process([python, "manage.py", "run_outbox_relay"], logs)
    try:
        return drive(args, mode, synchronous, stamp, history, history_path, keys, tenants, port, grpc_proc, relay_proc)
    finally:
        for proc in (relay_proc, grpc_proc):
            if proc.poll() is None:
                proc.kill()
        if not args.keep_up:
            ha.down(clean=False)


def drive(
    args: argparse.Namespace,
    mode: str,
    synchronous: bool,
    stamp: str,
    history: History,
    history_path: Path,
    keys: list[str],
    tenants: list[str],
    port: int,
    grpc_proc: subprocess.Popen[bytes],
    relay_proc: subprocess.Popen[bytes],
) -> int:
    logs = args.out / f"service-{mode}-{stamp}.log"
    stop = threading.Event()
    failovers: list[Failover] = []
    started = time.monotonic()
    try:

        def sidecar_up() -> bool:
            if grpc_proc.poll() is not None:
                raise SystemExit(f"the gRPC sidecar exited ({grpc_proc.returncode}); see {logs}")
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True

        ha.wait_for("the gRPC sidecar", sidecar_up, 60)
        hot = HotSet(keys, args.numbers)
        clients = [
            Client(f"c{i}", f"127.0.0.1:{port}", history, hot, tenants, stop, deadline=3.0, retry_for=6.0)
            for i in range(args.clients)
        ]
        for c in clients:
            c.start()
        janitor = Janitor(history, hot, stop)
        janitor.start()
        schedule = [n for _ in range(args.rounds) for n in args.nemeses.split(",")]
        log(f"{len(clients)} clients on {args.numbers} numbers at a time ({hot.generations} generations), "
            f"{len(tenants)} tenants; nemeses: {schedule}")  # fmt: skip
        for kind in schedule:
            time.sleep(args.settle)
            fo = nemesis(kind, synchronous=synchronous)
            fo.audit_chain_ok, fo.audit_chain_output = verify_audit_chain()
            log(f"  verify_audit_chain: {'ok' if fo.audit_chain_ok else 'BROKEN'}")
            failovers.append(fo)
            hot.advance()  # the next round's fault meets fresh numbers
        time.sleep(args.settle)
    finally:
        stop.set()
        for t in threading.enumerate():
            if isinstance(t, Client | Janitor):
                t.join(timeout=15)
    duration = time.monotonic() - started
    # Final reads, on whatever primary survived: the end state every acknowledged write must be in.
    reader = Client(
        "final-read",
        f"127.0.0.1:{port}",
        history,
        HotSet(keys, len(keys)),
        tenants,
        threading.Event(),
        deadline=10,
        retry_for=30,
    )
    for key in keys:
        op_id = history.invoke("final-read", key, "read", None)
        resp = reader.stub.Lookup(reader.pb.LookupRequest(number=key), timeout=10)
        n = resp.number
        history.complete(op_id, "ok", value=[reader.pb.NumberState.Name(n.state), n.tenant_id or None, n.version])
    history.close()

    ops, initial = checker.load_history(history_path.read_text().splitlines())
    report = checker.check_history(ops, initial)
    recovery_times(history_path, failovers, retry_for=6.0)
    acked = checker.acknowledged_versions(ops)
    audit_problems, versions, audit_notes = check_audit(keys, acked)
    try:
        event_problems = check_events(keys, versions)
    finally:
        relay_proc.terminate()
        grpc_proc.terminate()
        for proc in (relay_proc, grpc_proc):
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
    chain_ok, _ = verify_audit_chain()
    counts: dict[str, int] = defaultdict(int)
    for op in ops:
        counts[op.outcome] += 1
    result = Result(
        mode=mode,
        synchronous=synchronous,
        clients=args.clients,
        tenants=args.tenants,
        numbers=args.numbers,
        duration_seconds=round(duration, 1),
        operations=dict(counts),
        failovers=[asdict(f) for f in failovers],
        linearizable=report.ok,
        violations=[asdict(k) for k in report.violations],
        undecided_keys=[k.key for k in report.unknown],
        audit_problems=audit_problems,
        audit_notes=audit_notes,
        event_problems=event_problems,
        audit_chain_ok=chain_ok,
        history=str(history_path),
    )
    (args.out / f"result-{mode}-{stamp}.json").write_text(json.dumps(asdict(result), indent=2, default=str))
    summarize(result)
    if args.planted_bug:
        caught = result.total_violations > 0
        log("planted bug CAUGHT: the checker reports lost acknowledged writes" if caught else
            "planted bug: could not provoke a lost write this run (no acknowledged write was lost)")  # fmt: skip
        return 0
    return 0 if result.total_violations == 0 and chain_ok else 1


def summarize(result: Result) -> None:
    log(f"mode={result.mode} quorum={'on' if result.synchronous else 'OFF'} duration={result.duration_seconds}s "
        f"ops={result.operations}")  # fmt: skip
    for f in result.failovers:
        log(f"  failover {f['nemesis']:8s} {f['region']} -> {f['new_leader']}: recovery {f['recovery_seconds']} s, "
            f"audit chain {'ok' if f['audit_chain_ok'] else 'BROKEN'}"
            f"{'; old primary rebuilt by reinit' if f.get('rejoin_needed_reinit') else ''}")  # fmt: skip
    log(f"linearizable: {result.linearizable}; audit problems: {len(result.audit_problems)}; "
        f"event problems: {len(result.event_problems)}; violations total: {result.total_violations}")  # fmt: skip
    for v in result.violations[:5]:
        log(f"  NOT LINEARIZABLE {v['key']}: stuck at {v['stuck_at'][:3]}")
    for p in (result.audit_problems + result.event_problems)[:10]:
        log(f"  {p}")


if __name__ == "__main__":
    sys.exit(main())
