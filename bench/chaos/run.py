"""Chaos drills under the lifecycle mix (issue 15): `make drill-redis-outage`, `make drill-nats-outage`.

Each drill starts the service on its own database (bench/lifecycle_mix/stack.py) against a
PRIVATE Redis and NATS (the shared ones stay untouched), runs the open-loop mix, breaks one
dependency mid-load, restores it, and prints PASS/FAIL with numbers:

- redis-outage: Redis killed for --outage seconds, then started empty. ValidateLease keeps
  answering right (from PostgreSQL), mutations keep committing, and afterwards every lease in
  PostgreSQL is in Redis again (convergence time measured).
- nats-outage: NATS killed for --outage seconds, then started on the same JetStream store.
  Mutations keep committing, the outbox backlog grows, then drains; every outbox event is on
  the stream exactly once, in per-number order.
- celery-worker-kill: the Celery worker SIGKILLed in the middle of a queued 100k-row signed
  import, down for --outage seconds while reservations planted with a 5 s TTL go overdue.
  The import is delivered again and commits exactly once; the restarted worker's safety net
  expires every planted reservation exactly once; NumberingReservationCleanupLag fires
  (read by the web process, not the dead worker) and clears (ADR 1502).
- relay-kill, grpc-worker-kill: SIGKILL mid-load, restart: no duplicate, no lost event.

A real Prometheus (Debian's) scrapes every process with the project's rules, with each
`for:` divided by --compress (the thresholds stay as in production), and the drill asserts
that the alert the runbook names went to firing during the fault and back to inactive after
(skipped with --no-alerts, as the short versions in `make test` do).

    python bench/chaos/run.py redis-outage [--rate 300] [--outage 90] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.lifecycle_mix.mix import Report, Shares, run_mix, warm  # noqa: E402
from bench.lifecycle_mix.stack import OUT, Stack, free_port  # noqa: E402

if TYPE_CHECKING:
    from bench.chaos.netfault import Forwarder

RULES = ROOT / "deploy" / "prometheus" / "rules" / "numbering.rules.yml"
RESULTS = ROOT / "bench" / "RESULTS.md"
PLANTED = 20  # celery-worker-kill: reservations planted at the fault, 5-second TTL
PLANTED_TTL = 5
RECOVERY_BOUND_S = 30.0
PARTITION_RECOVERY_BOUND_S = 15.0  # tcp_user_timeout (10 s) + a reconnect (ADR 1504)


def wait_plants_expired(probe: Probe, timeout: float, also: Any = None) -> dict[str, Any]:
    """The planted reservations' states, once all are AVAILABLE (and `also()` holds) or at
    the timeout; beat runs the safety net every 30 s."""
    deadline = time.monotonic() + timeout
    while True:
        plants = probe.ask("planted")
        if (plants["states"] == {"AVAILABLE": PLANTED} and (also is None or also())) or time.monotonic() > deadline:
            return plants
        time.sleep(1)


def check_plants(outcome: Outcome, name: str, plants: dict[str, Any], extra: str = "") -> None:
    once = [n for n, c in plants["expiry_events"].items() if c != 1]
    outcome.check(
        name,
        plants["states"] == {"AVAILABLE": PLANTED} and not once,
        f"states {plants['states']}, {len(once)} numbers without exactly one expiry event{extra}",
    )


def _via(url: str, port: int) -> str:
    """The same database URL, through 127.0.0.1:<port>."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"))


DRAINED_LAG_S = 2.0  # the outbox is drained when its oldest unpublished event is this young


def load_ha() -> Any:
    """deploy/local-ha/ha.py (issue 14's three-region stack), imported by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ha", ROOT / "deploy" / "local-ha" / "ha.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["ha"] = module
    spec.loader.exec_module(module)
    return module


class Filler(threading.Thread):
    """Holds the cache server at its maxmemory with the committed policy (deploy/redis/cache.conf,
    volatile-lru, ADR 1507): caps maxmemory just above what is used, then writes cache-like
    junk (with a TTL, as every cached value has) until stopped, so every new key evicts an old
    one: lease entries, idempotency copies and reservation TTL keys included."""

    def __init__(self, port: int, policy: str | None = None) -> None:
        super().__init__(daemon=True)
        import redis as redis_lib

        self.client = redis_lib.Redis(port=port)
        self.policy = policy  # planted instead of the committed one (--cache-policy)
        self.stop_event = threading.Event()
        self.written = 0
        self.refused = 0  # OOM answers: the server had nothing left it may evict
        limit = self.client.config_get("maxmemory")["maxmemory"]
        assert limit is not None  # every Redis answers maxmemory (0 = no limit)
        self.limit = limit

    def run(self) -> None:
        import redis as redis_lib

        if self.policy:
            self.client.config_set("maxmemory-policy", self.policy)
        used = int(self.client.info("memory")["used_memory"])
        self.client.config_set("maxmemory", str(used + 2 * 1024 * 1024))
        blob = b"x" * 4096
        while not self.stop_event.is_set():
            pipe = self.client.pipeline(transaction=False)
            for _ in range(50):
                pipe.set(f"chaos:filler:{self.written}", blob, ex=600)
                self.written += 1
            try:
                pipe.execute()
            except redis_lib.ResponseError:
                self.refused += 1
            time.sleep(0.01)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)
        self.client.config_set("maxmemory", self.limit)


# --- private dependencies ---------------------------------------------------------------------


class Daemon:
    def __init__(self, name: str, argv: list[str], port: int) -> None:
        self.name, self.argv, self.port = name, argv, port
        self.proc: subprocess.Popen[bytes] | None = None
        OUT.mkdir(parents=True, exist_ok=True)  # git-ignored: absent in a fresh clone
        self.log = open(OUT / f"chaos-{name}-{port}.log", "ab")  # noqa: SIM115 - closed in stop()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)  # noqa: S603
        import socket

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start on :{self.port}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def private_redis(port: int, role: str = "cache") -> Daemon:
    """A redis-server from the committed config of its role (deploy/redis/, ADR 1801, 1507)."""
    directory = tempfile.mkdtemp(prefix=f"chaos-redis-{role}-")
    conf = ROOT / "deploy" / "redis" / f"{role}.conf"
    binary = shutil.which("redis-server") or "redis-server"
    return Daemon("redis", [binary, str(conf), "--port", str(port), "--bind", "127.0.0.1", "--dir", directory], port)


def private_nats(port: int, store: Path) -> Daemon:
    return Daemon(
        "nats",
        [
            shutil.which("nats-server") or "/usr/sbin/nats-server",
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-js",
            "-sd",
            str(store),
        ],
        port,
    )


def private_s3(port: int) -> Daemon:
    """A moto S3 server of the drill's own (in memory), so that `verify_audit_chain` checks
    the chains against signed checkpoints on WORM storage and writes a new one, as in
    production, instead of falling back to verifying from genesis without them."""
    return Daemon("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port)


# --- Prometheus with the project's rules ------------------------------------------------------


def compressed_rules(factor: int, target: Path) -> None:
    """The production rules with every `for:` divided by factor (at least 2 s)."""
    doc = yaml.safe_load(RULES.read_text())

    def seconds(text: str) -> int:
        units = {"s": 1, "m": 60, "h": 3600}
        return int(text[:-1]) * units[text[-1]]

    for group in doc["groups"]:
        group["interval"] = "2s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{max(2, seconds(rule['for']) // factor)}s"
    target.write_text(yaml.safe_dump(doc, sort_keys=False))


class Prometheus:
    def __init__(self, targets: dict[str, int], compress: int, jobs: dict[str, list[int]] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-prom-"))
        self.port = free_port()
        compressed_rules(compress, self.dir / "rules.yml")
        config = {
            "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
            "rule_files": [str(self.dir / "rules.yml")],
            "scrape_configs": [
                {"job_name": f"numbering-{name}", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for name, port in targets.items()
            ]
            + [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in ports]}]}
                for job, ports in (jobs or {}).items()
            ],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.daemon = Daemon(
            "prometheus",
            [
                "/usr/bin/prometheus",
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            self.port,
        )
        self.daemon.start()

    def alerts(self) -> dict[str, str]:
        """alertname -> worst state (firing > pending)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/alerts", timeout=3) as r:  # noqa: S310
            rows = json.load(r)["data"]["alerts"]
        out: dict[str, str] = {}
        for row in rows:
            name, state = row["labels"]["alertname"], row["state"]
            if out.get(name) != "firing":
                out[name] = state
        return out

    def stop(self) -> None:
        self.daemon.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the drill --------------------------------------------------------------------------------


@dataclass
class Outcome:
    drill: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    windows: dict[str, dict[str, Any]] = field(default_factory=dict)
    alert_timeline: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    sizing: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, ok, detail))
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}", flush=True)

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def window_stats(report: Report) -> dict[str, Any]:
    s = report.summary()
    ops = s["ops"]

    def group(prefix: str) -> dict[str, Any]:
        rows = [(k, v) for k, v in ops.items() if k.startswith(prefix)]
        n = sum(v["n"] for _, v in rows)
        ok = sum(v["outcomes"].get("OK", 0) for _, v in rows)
        p95 = max((v["p95_ms"] for _, v in rows), default=0)
        return {"n": n, "ok": ok, "p95_ms_max": p95}

    return {
        "validate": group("validate."),
        # Leases the caches hold (valid and wrong-tenant answers): they must answer even while
        # PostgreSQL has no primary; unknown numbers miss the cache and need the database.
        "validate_cached": {k: group("validate.valid")[k] + group("validate.wrong_tenant")[k] for k in ("n", "ok")},
        "grpc_writes": group("grpc."),
        "rest": group("rest."),
        "errors": s["errors"],
        "wrong_answers": sum(1 for x in report.samples if x.outcome.startswith("WRONG")),
        "outcomes": {k: v["outcomes"] for k, v in ops.items()},
    }


class Probe:
    """The drill's view of its own database and Redis, through the project's own models and
    settings, in a subprocess with the stack's environment (the drill may run inside pytest,
    whose Django points at the test database)."""

    def __init__(self, stack: Stack, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, str(Path(__file__).with_name("probe.py"))],
            cwd=ROOT,
            env=env or stack.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, question: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(question + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def pending(self) -> int:
        answer = self.ask("pending")
        return answer if isinstance(answer, int) else -1

    def lag(self) -> float:
        answer = self.ask("lag")
        return float(answer) if isinstance(answer, (int, float)) else float("inf")

    def converged(self) -> tuple[bool, str]:
        answer = self.ask("converged")
        return (bool(answer[0]), str(answer[1])) if isinstance(answer, list) else (False, str(answer))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


# Every stream the outbox relay publishes to: lifecycle events, and the anomaly detector's
# fraud signals (a Celery job: only celery-worker-kill's stack produces them).
RELAY_STREAMS = ("NUMBERING", "FRAUD_SIGNALS")


def stream_events(nats_url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        import nats

        nc = await nats.connect(nats_url, connect_timeout=3)
        try:
            js = nc.jetstream()
            out = []
            for stream in RELAY_STREAMS:
                info = await js.stream_info(stream)
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    try:
                        msg = await js.get_msg(stream, seq)
                    except Exception:  # noqa: BLE001, S112 - a deleted sequence
                        continue
                    out.append(json.loads(msg.data or b"{}"))
            return out
        finally:
            await nc.close()

    return asyncio.run(read())


def cache_trust(stack: Stack) -> dict[str, float]:
    """Trust the gRPC workers lost (any reason, ADR 1200) and the cache-sync's resyncs, so far."""
    grpc = [port for name, port in stack.metrics_ports.items() if name.startswith("grpc")]
    return {
        "trust_lost": sum(metric_total(port, "numbering_lease_cache_trust_lost_total") for port in grpc),
        "resyncs": metric_total(stack.metrics_ports["cachesync"], "numbering_lease_cache_resyncs_total"),
    }


def metric_total(port: int, name: str) -> float:
    """The sum of every sample of `name` a process exposes on its metrics port."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def _manage(stack: Stack, command: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """`manage.py <command>` against the drill's stack, its output captured."""
    return subprocess.run(
        [sys.executable, "manage.py", command], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=timeout
    )


def probe_verify_audit(stack: Stack) -> tuple[bool, str]:
    """The chains verify against the drill's checkpoints, and a new checkpoint is stored. A
    run that could not reach the checkpoint storage fails: it proved less than it says."""
    proc = _manage(stack, "verify_audit_chain", timeout=300)
    out = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0 and "without checkpoints" not in out and "new checkpoint:" in out, out


def _audit_summary(out: str) -> str:
    """The verification's result lines on one line (a RESULTS list item)."""
    keep = [line for line in out.splitlines() if line.startswith(("audit chain", "checked against", "new checkpoint"))]
    return "; ".join(keep) or out[-160:].replace("\n", " ")


def check_audit_after(outcome: Outcome, stack: Stack, fault: str) -> None:
    """After the fault the chains verify against the checkpoint stored before it."""
    ok, out = probe_verify_audit(stack)
    found = re.search(r"checked against (\d+) checkpoint", out)
    checked = int(found.group(1)) if found else 0
    outcome.check(
        f"the audit chain verifies after {fault}, against the checkpoint before it",
        ok and checked >= 1,
        _audit_summary(out),
    )


def provision_checkpoint_bucket(stack: Stack) -> None:
    """The checkpoint bucket (Object Lock) on the drill's S3; a server that listens but does
    not serve yet gets a few more seconds."""
    for attempt in range(5):
        proc = _manage(stack, "provision_export_bucket", timeout=60)
        if proc.returncode == 0:
            return
        if attempt < 4:
            time.sleep(1)
    raise RuntimeError(f"could not provision the drill's checkpoint bucket: {(proc.stdout + proc.stderr)[-400:]}")


# --- the drills: one object per drill, one skeleton that runs them ------------------------------


@dataclass
class DrillContext:
    """One run of a drill, as its hooks see it: the stack and the private dependencies, the
    drill's own view of them (`probe`, which never crosses a partition), the timings in
    seconds since the load began (`fault_at`, `restored_at`), and `job`, where the fault
    hooks keep what the judging reads after the load."""

    args: argparse.Namespace
    drill: Drill
    outcome: Outcome
    stack: Stack
    redis: Daemon
    nats_d: Daemon
    probe: Probe
    prom: Prometheus | None
    ha: Any  # deploy/local-ha/ha.py on the three-region stack (Drill.ha), else None
    forwarder: Forwarder | None  # postgres-partition's port to PostgreSQL (Drill.forwarder)
    planted_policy: str | None  # redis-memory-pressure --cache-policy
    t0: float
    job: dict[str, Any] = field(default_factory=dict)
    backlog: list[int] = field(default_factory=lambda: [0])  # nats-outage: unpublished, every 2 s
    filler: Filler | None = None  # redis-memory-pressure
    converge_s: float | None = None  # seconds after the restore, None if it did not converge
    converge_detail: str = ""
    fault_at: float = field(init=False)
    restored_at: float = field(init=False)
    report: Report = field(init=False)

    def poll_until(self, t_end: float) -> None:
        """Until t_end seconds into the load: the drill's own sampling and the alerts, every 2 s."""
        while time.monotonic() - self.t0 < t_end:
            self.drill.poll(self)
            if self.prom is not None:
                try:
                    self.outcome.alert_timeline.append((round(time.monotonic() - self.t0, 1), self.prom.alerts()))
                except OSError:
                    pass
            time.sleep(2)


Alerts = str | tuple[str, ...] | None  # a drill's alert, alerts, or none


class Drill:
    """One chaos drill: what it needs besides the split stack on a private Redis and NATS, how
    it breaks one dependency and restores it, how it measures the recovery, and what it
    judges beyond the checks every drill makes. `run_drill` calls the hooks in this order:
    poll (every 2 s throughout), fault_on, fault_off, converge, after_load, judge_writes,
    judge."""

    name: str
    # How long the fault lasts by default: a dependency outage, or a crashed pod until restarted.
    default_outage: float
    # The alert(s) the drill's runbook names (docs/runbooks/<alert>.md says which drill proves it).
    alerts: Alerts = None
    # A planted misconfiguration (`--cache-policy allkeys-lru`, ADR 1507) and the alert that must name it.
    planted_alert: str | None = None
    audited = False  # an audit checkpoint is stored before the fault and verified against after it
    # Beat and a worker (the reservation safety net) where the drill judges them: killed, or
    # the only cleaner of reservations whose TTL keys a dead Redis took with it.
    celery = False
    ha = False  # the three-region stack (Patroni quorum commit, NATS ×3) instead of the local PostgreSQL
    forwarder = False  # the service reaches PostgreSQL through a forwarder port the fault can drop
    db_fault = False  # PostgreSQL is what fails: writes fail until it answers; cache hits must not
    unknown_share = 0.05  # validations of numbers no cache holds: they need PostgreSQL
    drain_bound = 10  # seconds after the restore for the outbox to drain

    def planted_policy(self, args: argparse.Namespace) -> str | None:
        """A misconfiguration the drill plants instead of the committed one (ADR 1507)."""
        return None

    def poll(self, ctx: DrillContext) -> None:
        """Sampled every 2 s of the run, beside the alerts."""

    def fault_on(self, ctx: DrillContext) -> None:
        raise NotImplementedError

    def fault_off(self, ctx: DrillContext) -> None:
        raise NotImplementedError

    def converge(self, ctx: DrillContext) -> None:
        """Within --after of the restore: the outbox drains (its oldest unpublished event is
        at most DRAINED_LAG_S old)."""
        probe = ctx.probe
        deadline = time.monotonic() + ctx.args.after
        while time.monotonic() < deadline and probe.lag() > DRAINED_LAG_S:
            time.sleep(0.5)
        if probe.lag() <= DRAINED_LAG_S:
            ctx.converge_s = round(time.monotonic() - ctx.t0 - ctx.restored_at, 1)

    def after_load(self, ctx: DrillContext) -> None:
        """Once the load has stopped, before its windows are judged."""

    def judge_writes(self, ctx: DrillContext) -> None:
        """The mutations through the fault."""
        during_writes = ctx.outcome.windows["during"]["grpc_writes"]
        ctx.outcome.check(
            "mutations kept committing during the fault",
            during_writes["ok"] > 0 and during_writes["ok"] >= 0.95 * during_writes["n"],
            f"{during_writes['ok']}/{during_writes['n']} ok",
        )

    def judge(self, ctx: DrillContext) -> None:
        """The drill's own checks after ValidateLease's, before the stream's."""
        self.check_drained(ctx)

    def check_drained(self, ctx: DrillContext) -> None:
        ctx.outcome.check(
            f"the outbox drained (oldest event ≤ 2 s old) within {self.drain_bound} s after the restore",
            ctx.converge_s is not None and ctx.converge_s <= self.drain_bound,
            f"drained {ctx.converge_s} s after restart",
        )


class LeaseCacheDrill(Drill):
    """A drill on the cache server: reservations planted with a short TTL at the fault, whose
    TTL keys the fault loses; the recovery is the lease cache converging, not the outbox."""

    # The safety net is the only cleaner of reservations whose TTL keys a dead Redis took with
    # it, or the pressure evicted (ADR 1507).
    celery = True

    def converge(self, ctx: DrillContext) -> None:
        """Within --after of the restore: every lease in PostgreSQL is in Redis again."""
        deadline = time.monotonic() + ctx.args.after
        while time.monotonic() < deadline:
            ok, ctx.converge_detail = ctx.probe.converged()
            if ok:
                ctx.converge_s = round(time.monotonic() - ctx.t0 - ctx.restored_at, 1)
                break
            time.sleep(0.5)

    def after_load(self, ctx: DrillContext) -> None:
        ctx.job["plants"] = wait_plants_expired(ctx.probe, 90)
        ctx.job["expired_s"] = round(time.monotonic() - ctx.t0 - ctx.fault_at, 1)

    def check_converged(self, ctx: DrillContext) -> None:
        ctx.outcome.check(
            "the lease cache converged after Redis came back",
            ctx.converge_s is not None,
            f"{ctx.converge_s} s after restart (bound 5 s, ADR 1200); {ctx.converge_detail}",
        )


class RedisOutage(LeaseCacheDrill):
    """Redis killed for --outage seconds, then started empty. ValidateLease keeps answering
    right (from PostgreSQL), mutations keep committing, the TTL safety net expires the
    reservations whose TTL keys died with Redis, and afterwards every lease in PostgreSQL is
    in Redis again (convergence time measured)."""

    name = "redis-outage"
    default_outage = 90.0
    alerts = "NumberingLeaseCacheSyncStalled"

    def fault_on(self, ctx: DrillContext) -> None:
        # Reservations whose TTL keys die with Redis and come due during the outage: only
        # the safety net can expire them (ADR 0603).
        ctx.job["planted"] = ctx.probe.ask(f"plant {PLANTED} {PLANTED_TTL}")
        ctx.redis.kill()

    def fault_off(self, ctx: DrillContext) -> None:
        ctx.redis.start()

    def judge(self, ctx: DrillContext) -> None:
        check_plants(
            ctx.outcome,
            "the TTL safety net expired the reservations whose TTL keys Redis lost, exactly once",
            ctx.job["plants"],
            f"; all AVAILABLE when checked, {ctx.job['expired_s']} s after the fault began ({PLANTED_TTL} s TTL)",
        )
        self.check_converged(ctx)


class RedisMemoryPressure(LeaseCacheDrill):
    """The cache server held at its maxmemory (Filler) for --outage seconds: it evicts, and
    with the committed volatile-lru only what expires: the cache's bookkeeping outlives the
    pressure, no reader loses its trust, the safety net expires the reservations whose TTL
    keys were evicted, and the lease cache converges. With --cache-policy a planted
    allkeys-* policy must make the readers lose their trust instead (ADR 1507). Measures the
    cache's entry sizes too."""

    name = "redis-memory-pressure"
    default_outage = 30.0
    alerts: Alerts = None  # the cache evicting is its normal work, not a page
    planted_alert = "NumberingLeaseCacheTrustChurn"

    def planted_policy(self, args: argparse.Namespace) -> str | None:
        return getattr(args, "cache_policy", None)

    def fault_on(self, ctx: DrillContext) -> None:
        ctx.outcome.sizing = ctx.probe.ask("sizing")
        ctx.job["cache_trust"] = cache_trust(ctx.stack)
        ctx.job["planted"] = ctx.probe.ask(f"plant {PLANTED} {PLANTED_TTL}")
        ctx.filler = Filler(ctx.redis.port, ctx.planted_policy)
        ctx.filler.start()
        time.sleep(2)  # into the pressure, before the plants come due
        ctx.job["ttl_keys_kept"] = ctx.probe.ask("planted_ttl_keys")

    def fault_off(self, ctx: DrillContext) -> None:
        assert ctx.filler is not None
        ctx.job["pressure"] = ctx.probe.ask("sizing")
        ctx.job["cache_trust_after"] = cache_trust(ctx.stack)
        ctx.filler.stop()

    def judge(self, ctx: DrillContext) -> None:
        outcome, job, filler, planted_policy = ctx.outcome, ctx.job, ctx.filler, ctx.planted_policy
        assert filler is not None
        pressure = job["pressure"]
        self.check_converged(ctx)
        evicted = int(pressure.get("evicted_keys", 0)) - int(outcome.sizing.get("evicted_keys", 0))
        outcome.check(
            "the cache server evicted under pressure",
            evicted > 0 and filler.refused == 0,
            f"{evicted} keys evicted, {filler.refused} writes refused (OOM)",
        )
        before, after = job["cache_trust"], job["cache_trust_after"]
        lost = {k: after[k] - before[k] for k in before}
        if planted_policy:
            outcome.check(
                f"the planted {planted_policy} evicted the cache's bookkeeping: readers lost their trust",
                any(lost.values()),
                f"{lost}; bookkeeping keys present {pressure['permanent_present']} (ADR 1507)",
            )
        else:
            outcome.check(
                "the cache's bookkeeping outlived the pressure: no reader lost its trust, no resync",
                not any(lost.values()) and len(pressure["permanent_present"]) == 3,
                f"{lost}; bookkeeping keys present {pressure['permanent_present']} (ADR 1507)",
            )
        outcome.check(
            "every other key on the cache server has a TTL (volatile-lru may evict it)",
            not pressure["no_ttl_other"],
            f"keys without a TTL: {pressure['no_ttl_other'] or 'none'}",
        )
        check_plants(
            outcome,
            "every planted reservation expired, exactly once, though the pressure evicted TTL keys",
            job["plants"],
            f"; all AVAILABLE when checked, {job['expired_s']} s after the fault began ({PLANTED_TTL} s TTL); "
            f"{PLANTED - job['ttl_keys_kept']} of {PLANTED} TTL keys evicted 2 s into the pressure",
        )
        lease = outcome.sizing.get("lease_entry", {}).get("bytes_avg")
        outcome.check(
            "sizing measured",
            bool(lease),
            f"lease entry {lease} B, idempotency copy "
            f"{outcome.sizing.get('idempotency_copy', {}).get('bytes_avg')} B, reservation TTL key "
            f"{outcome.sizing.get('reservation_ttl', {}).get('bytes_avg')} B (MEMORY USAGE averages)",
        )


class NatsOutage(Drill):
    """NATS killed for --outage seconds, then started on the same JetStream store. Mutations
    keep committing, the outbox backlog grows, then drains; every outbox event is on the
    stream exactly once, in per-number order."""

    name = "nats-outage"
    default_outage = 90.0
    alerts = "NumberingOutboxLag"

    def poll(self, ctx: DrillContext) -> None:
        ctx.backlog.append(ctx.probe.pending())

    def fault_on(self, ctx: DrillContext) -> None:
        ctx.nats_d.kill()

    def fault_off(self, ctx: DrillContext) -> None:
        ctx.nats_d.start()

    def judge(self, ctx: DrillContext) -> None:
        backlog = ctx.backlog
        ctx.outcome.check(
            "the outbox backlog grew during the outage", max(backlog) > 0, f"peak {max(backlog)} unpublished"
        )
        self.check_drained(ctx)


class ProcessKill(Drill):
    """One of the stack's processes SIGKILLed mid-load (a crashed pod), restarted after
    --outage seconds: no duplicate, no lost event."""

    process: str  # the Stack's name for it
    default_outage = 5.0
    alerts: Alerts = None  # a restart within seconds: nothing should page

    def fault_on(self, ctx: DrillContext) -> None:
        ctx.stack.kill(self.process)

    def fault_off(self, ctx: DrillContext) -> None:
        ctx.stack.restart(self.process)


class RelayKill(ProcessKill):
    """The outbox relay killed and restarted: the outbox drains, every event once, in order."""

    name = "relay-kill"
    process = "relay"


class GrpcWorkerKill(ProcessKill):
    """One of the two mutation-pool replicas killed and restarted: callers retry with the same
    idempotency keys, every mutation completes, none twice."""

    name = "grpc-worker-kill"
    process = "grpc_write"

    def judge_writes(self, ctx: DrillContext) -> None:
        # The mutation pool was down until restarted: callers retried with the same keys.
        w = ctx.outcome.windows
        total = sum(v["grpc_writes"]["n"] for v in w.values())
        ok = sum(v["grpc_writes"]["ok"] for v in w.values())
        ctx.outcome.check(
            "every mutation completed after retries with the same key",
            ok >= 0.99 * total,
            f"{ok}/{total} ok, {ctx.report.retries} retries",
        )


class CeleryWorkerKill(ProcessKill):
    """The Celery worker SIGKILLed in the middle of a queued signed import (--import-rows),
    down for --outage seconds while reservations planted with a 5 s TTL go overdue. The
    import is delivered again and commits exactly once; the restarted worker's safety net
    expires every planted reservation exactly once; NumberingReservationCleanupLag fires
    (read by the web process, not the dead worker) and clears (ADR 1502)."""

    name = "celery-worker-kill"
    process = "worker"
    # Long enough for a 5-s reservation to pass the alert's 60 s threshold plus its `for:`.
    default_outage = 120.0
    # Worker down: the safety net stops, planted reservations go overdue (ADR 1502).
    alerts = "NumberingReservationCleanupLag"
    celery = True

    def fault_on(self, ctx: DrillContext) -> None:
        probe, job = ctx.probe, ctx.job
        job["planted"] = probe.ask(f"plant {PLANTED} {PLANTED_TTL}")
        job["import_id"] = probe.ask(f"import {int(ctx.args.import_rows)}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and probe.ask("imported")["status"] != "RUNNING":
            time.sleep(0.1)
        time.sleep(0.5)  # into the run: past the signature check, validating rows
        super().fault_on(ctx)
        job["at_kill"] = probe.ask("imported")
        print(f"[{self.name}] worker killed; import {job['import_id']} was {job['at_kill']['status']}", flush=True)

    def after_load(self, ctx: DrillContext) -> None:
        # The job resumes: the import is delivered again (after the visibility timeout) and
        # commits; the restarted worker's safety net (beat, every 30 s) expires the plants.
        probe, job = ctx.probe, ctx.job

        def committed() -> bool:
            job["after"] = probe.ask("imported")
            return bool(job["after"]["status"] == "COMMITTED")

        job["plants"] = wait_plants_expired(probe, ctx.args.visibility + 120, also=committed)
        committed()
        job["resumed_s"] = round(time.monotonic() - ctx.t0 - ctx.restored_at, 1)

    def judge(self, ctx: DrillContext) -> None:
        outcome, job = ctx.outcome, ctx.job
        at_kill, after, plants = job["at_kill"], job["after"], job["plants"]
        outcome.check(
            "the worker was killed in the middle of the import",
            at_kill["status"] == "RUNNING",
            f"import {job['import_id']} was {at_kill['status']} when the worker died",
        )
        rows = int(ctx.args.import_rows)
        outcome.check(
            "the import was delivered again and committed exactly once",
            after["status"] == "COMMITTED"
            and after["accepted"] == after["numbers"] == rows
            and after["audit_events"] == after["outbox_events"] == 1,
            f"{after['status']} {after['accepted']}/{rows} accepted, {after['numbers']} numbers, "
            f"{after['audit_events']} audit / {after['outbox_events']} outbox events; "
            f"{job['resumed_s']} s after the restart {after['error']}",
        )
        check_plants(outcome, "the safety net resumed: every planted reservation expired, exactly once", plants)
        self.check_drained(ctx)


class PostgresPartition(Drill):
    """PostgreSQL silent behind iptables DROP on the service's own forwarder port for --outage
    seconds (ADR 1504): the service answers UNAVAILABLE itself, before the callers'
    deadlines; cache hits keep answering; writes recover within 15 s of the heal; the audit
    chain verifies against the checkpoint stored before the partition."""

    name = "postgres-partition"
    # P95 needs > 5 % of the 5-minute window slow and then its `for:` (10 m ÷ 30): 90 s does it.
    default_outage = 90.0
    # PostgreSQL silent (a partition): misses and mutations answer UNAVAILABLE, misses slowly.
    alerts = (
        "NumberingUnavailableRetries",
        "NumberingValidateLeaseP95High",
        "NumberingValidateLeaseP99High",
    )
    audited = True
    forwarder = True
    db_fault = True
    unknown_share = 0.10  # a cold cache (after a deploy, say): one validation in ten misses
    drain_bound = 20

    def fault_on(self, ctx: DrillContext) -> None:
        from bench.chaos import netfault

        assert ctx.forwarder is not None
        netfault.partition(ctx.forwarder.port)

    def fault_off(self, ctx: DrillContext) -> None:
        from bench.chaos import netfault

        netfault.heal()

    def judge_writes(self, ctx: DrillContext) -> None:
        # Writes fail until PostgreSQL answers again: judged by the recovery time.
        outcome, report, t0 = ctx.outcome, ctx.report, ctx.t0
        fault_at, restored_at = ctx.fault_at, ctx.restored_at
        heal = t0 + restored_at
        during = [x for x in report.samples if fault_at <= x.due - t0 < restored_at]
        failed = [x for x in during if x.op.startswith(("grpc.", "validate.unknown")) and x.outcome != "OK"]
        deadlines = [x for x in failed if x.outcome == "DEADLINE_EXCEEDED"]
        codes: dict[str, int] = defaultdict(int)
        for x in failed:
            codes[x.outcome] += 1
        outcome.check(
            "the service answered UNAVAILABLE itself, before the callers' deadlines",
            bool(failed) and len(deadlines) <= 0.01 * len(failed),
            f"{len(failed)} failed calls during the partition: {dict(codes)}",
        )
        writes_ok = sorted(x.due + x.latency for x in report.samples if x.op.startswith("grpc.") and x.outcome == "OK")
        first_ok = next((t for t in writes_ok if t >= heal), None)
        recovery = None if first_ok is None else round(first_ok - heal, 1)
        outcome.check(
            f"writes recovered within {PARTITION_RECOVERY_BOUND_S:.0f} s of the heal",
            recovery is not None and recovery <= PARTITION_RECOVERY_BOUND_S,
            f"first acknowledged write {recovery} s after the heal",
        )
        check_audit_after(outcome, ctx.stack, "the partition")


class PostgresFailover(Drill):
    """The primary of the three-region stack killed (-9) under load, restarted once a new
    leader is up: writes recover within 30 s, cache hits keep answering, the audit chain
    verifies against the checkpoint stored before the failover."""

    name = "postgres-failover"
    default_outage = 0.0  # kill -9 of the primary; the fault lasts until a new leader is up
    alerts: Alerts = None  # a failover within 30 s pages no one; CrossRegionLag is the HA drill's
    audited = True
    ha = True
    db_fault = True

    def fault_on(self, ctx: DrillContext) -> None:
        ha = ctx.ha
        primary = ha.leader()
        ha.kill_node(primary)
        new = ha.wait_for("a new leader", lambda: (lead := ha.leader()) is not None and lead != primary, 90, 0.2)
        print(f"[{self.name}] new leader after {time.monotonic() - ctx.t0 - ctx.fault_at:.1f} s ({new})", flush=True)
        ha.start_node(primary)

    def fault_off(self, ctx: DrillContext) -> None:
        ctx.ha.wait_healthy("cluster healthy again", synchronous=True, timeout=180)

    def judge_writes(self, ctx: DrillContext) -> None:
        # Writes fail until PostgreSQL answers again: judged by the recovery time.
        t0, fault_at = ctx.t0, ctx.fault_at
        writes = sorted((x for x in ctx.report.samples if x.op.startswith("grpc.")), key=lambda x: x.due)
        failed = [x for x in writes if x.due - t0 >= fault_at and x.outcome != "OK"]
        recovery = None
        if failed:
            first_fail = failed[0].due
            ok_after = [x for x in writes if x.due > first_fail and x.outcome == "OK"]
            recovery = round(ok_after[0].due - first_fail, 1) if ok_after else None
        ctx.outcome.check(
            f"writes recovered within {RECOVERY_BOUND_S:.0f} s",
            not failed or (recovery is not None and recovery < RECOVERY_BOUND_S),
            f"first failed write → first acknowledged one: {recovery} s" if failed else "no write failed",
        )
        check_audit_after(ctx.outcome, ctx.stack, "the failover")


class ReplicaLag(Drill):
    """One standby of the three-region stack stops replaying under load while quorum commit
    goes on: writes keep committing, NumberingCrossRegionLag fires on the real
    postgres_exporter metric and clears, the audit chain verifies after the lag."""

    name = "replica-lag"
    # Past the 10 s threshold, then `for:` 2 m ÷ 30 = 4 s, with scrapes to spare.
    default_outage = 30.0  # replay waits at most max_standby_streaming_delay (30 s) anyway
    # The three-region stack: one standby's replay paused while quorum commit goes on.
    alerts = "NumberingCrossRegionLag"
    audited = True
    ha = True

    def fault_on(self, ctx: DrillContext) -> None:
        # A long query on a standby conflicts with replay (the classic cause of replica
        # lag): the standby holds a lock on a table the primary then truncates, so replay
        # waits for the query up to max_standby_streaming_delay (30 s). The standby still
        # receives and flushes WAL: quorum commit goes on. (pg_wal_replay_pause() would not
        # do: Patroni resumes a paused replay on its next loop.)
        import psycopg

        ha, job = ctx.ha, ctx.job
        lead = ha.leader()
        job["lagging"] = next(r for r in ha.REGIONS if r != lead)
        ha.psql(lead.pg_port, "CREATE TABLE IF NOT EXISTS chaos_lag (x int)")
        ha.wait_for("the table on the standby", lambda: ha.psql(job["lagging"].pg_port,
                    "SELECT to_regclass('chaos_lag') IS NOT NULL") == "t", 30, 0.2)  # fmt: skip
        job["reader"] = psycopg.connect(host="127.0.0.1", port=job["lagging"].pg_port, user="postgres",
                                        dbname="postgres")  # fmt: skip
        job["reader"].execute("SELECT count(*) FROM chaos_lag")  # holds its lock: the transaction stays open
        ha.psql(lead.pg_port, "TRUNCATE chaos_lag")
        print(f"[{self.name}] replay blocked on {job['lagging'].name} (leader {lead.name})", flush=True)

    def fault_off(self, ctx: DrillContext) -> None:
        with contextlib.suppress(Exception):  # the standby may have cancelled it already
            ctx.job["reader"].close()

    def judge_writes(self, ctx: DrillContext) -> None:
        check_audit_after(ctx.outcome, ctx.stack, "the lag")
        super().judge_writes(ctx)


DRILLS: dict[str, Drill] = {
    drill.name: drill
    for drill in (
        RedisOutage(),
        NatsOutage(),
        RelayKill(),
        GrpcWorkerKill(),
        CeleryWorkerKill(),
        RedisMemoryPressure(),
        PostgresPartition(),
        PostgresFailover(),
        ReplicaLag(),
    )
}
# The alerts by drill, for the runbook tests (tests/bench/test_chaos_runbooks.py).
DRILL_ALERTS = {name: drill.alerts for name, drill in DRILLS.items()}
PLANTED_ALERTS = {name: drill.planted_alert for name, drill in DRILLS.items() if drill.planted_alert}


def alerts_of(name: str, planted: bool = False) -> tuple[str, ...]:
    value = PLANTED_ALERTS[name] if planted else DRILL_ALERTS[name]
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def run_drill(name: str, args: argparse.Namespace) -> Outcome:
    """The drill `name` under the mix: its environment up, the load started, the fault on at
    --before, off after --outage, the recovery measured, the load's windows judged, and the
    checks every drill makes (no wrong answer, no refused retry, ValidateLease answering,
    every event once and in order, the alerts) around the drill's own."""
    drill = DRILLS[name]
    outcome = Outcome(name)
    planted_policy = drill.planted_policy(args)
    expected_alerts = alerts_of(name, planted=bool(planted_policy))
    redis_port, nats_port = free_port(), free_port()
    store = Path(tempfile.mkdtemp(prefix="chaos-js-"))
    s3_port = free_port()
    redis, nats_d, s3 = private_redis(redis_port), private_nats(nats_port, store), private_s3(s3_port)
    redis.start()
    nats_d.start()
    s3.start()
    env = {
        # A fresh database per drill: its audit checkpoints must not meet an earlier run's.
        "AUDIT_CHECKPOINT_PREFIX": f"audit-checkpoints-chaos-{uuid.uuid4().hex[:12]}",
        "AUDIT_CHECKPOINTS": "1",
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "S3_ACCESS_KEY_ID": "chaos",
        "S3_SECRET_ACCESS_KEY": "chaos",
        "EXPORT_BUCKET": f"chaos-{uuid.uuid4().hex[:12]}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "NATS_URL": f"nats://127.0.0.1:{nats_port}",
        "NATS_PROVISION_DEV_STREAMS": "1",
    }
    ha = None
    if drill.ha:
        # The three-region stack (Patroni quorum commit, NATS ×3); the service re-resolves the
        # primary per unit of work (libpq multi-host URL, no kept connections: ADR 1400).
        ha = load_ha()
        ha.up(fresh=True, synchronous=True)
        env.update(ha.service_env(), DATABASE_CONN_MAX_AGE="0", GRPC_DB_THREADS="32")
        env.pop("NATS_PROVISION_DEV_STREAMS")
    broker = None
    if drill.celery:
        # A broker of its own (noeviction, as deploy/redis/broker.conf), the import queued to
        # the worker, and a short visibility timeout so the killed worker's import comes back
        # within the drill (production: CELERY_VISIBILITY_TIMEOUT 900 s, ADR 1502).
        broker_port = free_port()
        broker = private_redis(broker_port, "broker")
        broker.start()
        env.update(
            CELERY_BROKER_URL=f"redis://127.0.0.1:{broker_port}/0",
            INVENTORY_IMPORT_ASYNC="1",
            CELERY_VISIBILITY_TIMEOUT=str(int(args.visibility)),
        )
    # Two mutation-pool replicas, as production runs (HPA min 2): grpc-worker-kill kills one.
    stack = Stack(
        db_suffix=f"chaos_{name.replace('-', '_')}",
        split=True,
        write_replicas=2,
        celery=drill.celery,
        extra_env=env,
    )
    forwarder = None
    prom = probe = None
    try:
        # The checkpoint bucket (S3) is made while the database is prepared and seeded.
        side = concurrent.futures.ThreadPoolExecutor(1)
        bucket = side.submit(provision_checkpoint_bucket, stack)
        side.shutdown(wait=False)
        stack.prepare(database=ha is None)
        data = stack.seed(
            [
                "--tenants",
                "8",
                "--leases",
                "25",
                "--free",
                str(int(args.rate * args.total * 0.1 / 8) + 50),
                "--criteria",
                "500",
                "--token-ttl",
                str(int(args.total) + 900),
            ]
        )
        bucket.result(timeout=120)
        direct_env = dict(stack.env)
        if drill.forwarder:
            # The service reaches PostgreSQL through a port of its own, which the fault drops.
            from urllib.parse import urlsplit

            from bench.chaos import netfault

            db = urlsplit(stack.env["DATABASE_URL"])
            forwarder = netfault.Forwarder(db.hostname or "127.0.0.1", db.port or 5432).start_and_wait()
            for var in ("DATABASE_URL", "DATABASE_OWNER_URL", "DATABASE_TENANT_URL"):
                stack.env[var] = _via(stack.env[var], forwarder.port)
        stack.start()
        probe = Probe(stack, env=direct_env)  # the drill's own view never crosses the partition
        if not args.no_alerts and expected_alerts:
            # On the HA stack the exporters too, under the job name the replication rules read.
            jobs = {"numbering-postgres-exporter": [r.exporter_port for r in ha.REGIONS]} if ha is not None else None
            prom = Prometheus(stack.metrics_ports, args.compress, jobs)
        # The load runs in a process of its own: this one forks daemons (Redis, NATS, Patroni,
        # the service's processes) mid-load, and a fork while gRPC threads run can crash the
        # child (gRPC's fork handlers; seen with Patroni). No gRPC call is made from here.
        pool = multiprocessing.get_context("spawn").Pool(1)
        warmed = pool.apply(warm, (stack.target(), data))
        print(f"[{name}] warmed: {warmed}/{len(data.leases)} leases valid and cached", flush=True)
        shares = Shares(validate=0.9, grpc_write=0.08, rest=0.02, unknown=drill.unknown_share)
        kwargs = {"rate": args.rate, "duration": args.total, "shares": shares, "timeout": 3, "retries": 10}
        pending_report = pool.apply_async(run_mix, (stack.target(), data), kwargs)
        ctx = DrillContext(
            args=args,
            drill=drill,
            outcome=outcome,
            stack=stack,
            redis=redis,
            nats_d=nats_d,
            probe=probe,
            prom=prom,
            ha=ha,
            forwarder=forwarder,
            planted_policy=planted_policy,
            t0=time.monotonic(),
        )
        t0 = ctx.t0

        if drill.audited:
            # A signed checkpoint of the chains the load has written so far: the verification
            # after the fault must check against it (nothing before the fault rewritten or lost).
            ctx.poll_until(max(1.0, args.before - 4))
            ok_chain, chain_out = probe_verify_audit(stack)
            outcome.check("an audit checkpoint is stored before the fault", ok_chain, _audit_summary(chain_out))
        ctx.poll_until(args.before)
        print(f"[{name}] t={time.monotonic() - t0:.0f}s: fault on", flush=True)
        ctx.fault_at = time.monotonic() - t0
        drill.fault_on(ctx)
        ctx.poll_until(args.before + args.outage)
        print(f"[{name}] t={time.monotonic() - t0:.0f}s: fault off", flush=True)
        ctx.restored_at = time.monotonic() - t0
        drill.fault_off(ctx)
        drill.converge(ctx)
        ctx.poll_until(args.total)
        ctx.report = report = pending_report.get(timeout=args.total + 120)
        drill.after_load(ctx)
        pool.close()
        fault_at, restored_at = ctx.fault_at, ctx.restored_at
        shift = t0 - report.started  # the windows count from the load's own start (monotonic clocks agree)
        end_of_load = args.total
        # Settle: alerts resolve only after their windows pass; the load has stopped.
        if prom is not None:
            settle = time.monotonic() + args.settle
            while time.monotonic() < settle:
                now = prom.alerts()
                outcome.alert_timeline.append((round(time.monotonic() - t0, 1), now))
                if all(
                    now.get(alert) is None and any(s.get(alert) == "firing" for _, s in outcome.alert_timeline)
                    for alert in expected_alerts
                ):
                    break
                time.sleep(2)

        for label, (a, b) in {
            "before": (0, fault_at + shift),
            "during": (fault_at + shift, restored_at + shift),
            "after": (restored_at + shift, end_of_load),
        }.items():
            outcome.windows[label] = window_stats(report.window(a, b))
        w = outcome.windows
        (OUT / f"chaos-{name}-windows.json").write_text(json.dumps(w, indent=1))
        print(
            f"[{name}] windows: "
            + json.dumps({k: {x: v[x] for x in ("validate", "grpc_writes", "errors")} for k, v in w.items()}),
            flush=True,
        )
        outcome.check(
            "no wrong ValidateLease answer in any window",
            all(v["wrong_answers"] == 0 for v in w.values()),
            str({k: v["wrong_answers"] for k, v in w.items()}),
        )
        drill.judge_writes(ctx)
        duplicates = [x for x in report.samples if x.outcome.startswith("RETRY:")]
        for refusal in report.retry_refusals:
            print(f"[{name}] retry refused: {refusal}", flush=True)
        outcome.check(
            "no retry with the same key was refused (no duplicate effect)",
            not duplicates,
            f"{len(duplicates)} of {report.retries} retries"
            + (f", e.g. {duplicates[0].outcome}" if duplicates else ""),
        )
        validate_during = w["during"]["validate_cached" if drill.db_fault else "validate"]
        outcome.check(
            "ValidateLease cache hits kept answering during the fault"
            if drill.db_fault
            else "ValidateLease kept answering during the fault",
            validate_during["ok"] >= 0.99 * max(1, validate_during["n"]),
            f"{validate_during['ok']}/{validate_during['n']} ok, worst P95 {w['during']['validate']['p95_ms_max']} ms",
        )
        drill.judge(ctx)
        # The load has stopped: whatever is still unpublished is the relay catching up (a NATS
        # reconnect under CPU pressure), not yet a loss. Give it 30 s, then judge.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and probe.pending() != 0:
            time.sleep(0.5)
        unpublished = probe.pending()
        rows = probe.ask("events")
        msgs = stream_events(env["NATS_URL"])
        ids = [m.get("id") for m in msgs]
        dupes = len(ids) - len(set(ids))
        missing = set(rows) - set(ids)
        per_subject: dict[str, list[int]] = defaultdict(list)
        for m in msgs:
            if m.get("sequence") is not None:
                per_subject[m["subject"]].append(int(m["sequence"]))
        disordered = [s for s, seq in per_subject.items() if seq != sorted(seq)]
        outcome.check(
            "every outbox event on NATS exactly once",
            dupes == 0 and not missing,
            f"{len(rows)} events, {len(msgs)} messages, {dupes} duplicates, {len(missing)} missing"
            + (
                f" ({unpublished} still unpublished), e.g. of {sorted({rows[i] for i in missing})[:5]}"
                if missing
                else ""
            ),
        )
        outcome.check("events in per-number order", not disordered, f"{len(disordered)} numbers out of order")
        for alert in expected_alerts if prom is not None else ():
            fired = [t for t, s in outcome.alert_timeline if s.get(alert) == "firing"]
            inactive = [t for t, s in outcome.alert_timeline if fired and t > fired[-1] and alert not in s]
            cleared = bool(inactive)
            late = f", {fired[0] - restored_at:.0f} s after the fault ended" if fired and fired[0] > restored_at else ""
            outcome.check(
                f"{alert} fired",
                bool(fired),
                f"first firing at t={fired[0]} s (fault {fault_at:.0f}–{restored_at:.0f} s{late})"
                if fired
                else "never fired",
            )
            outcome.check(
                f"{alert} went back to inactive after recovery",
                bool(cleared),
                f"inactive again at t={inactive[0]} s" if cleared else "",
            )
    finally:
        if prom is not None:
            prom.stop()
        if probe is not None:
            probe.close()
        stack.stop()
        redis.stop()
        nats_d.stop()
        s3.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(store, ignore_errors=True)
        if forwarder is not None:
            from bench.chaos import netfault

            netfault.remove()
            forwarder.stop()
        if ha is not None and not getattr(args, "keep_up", False):
            ha.down(clean=False)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("drill", choices=sorted(DRILLS))
    parser.add_argument("--rate", type=float, default=300, help="mix requests per second")
    parser.add_argument("--before", type=float, default=20)
    parser.add_argument("--outage", type=float, default=None, help="fault length (default per drill)")
    parser.add_argument("--after", type=float, default=40)
    parser.add_argument("--settle", type=float, default=120, help="max seconds to wait for the alert to clear")
    parser.add_argument("--compress", type=int, default=30, help="divide every rule's `for:` by this")
    parser.add_argument("--no-alerts", action="store_true")
    parser.add_argument("--record", action="store_true")
    parser.add_argument(
        "--cache-policy",
        choices=("allkeys-lru", "allkeys-lfu", "allkeys-random"),
        help="redis-memory-pressure: plant this policy instead of cache.conf's (ADR 1507); the drill "
        "then expects NumberingLeaseCacheTrustChurn to fire and clear",
    )
    parser.add_argument("--import-rows", type=int, default=100_000, help="celery-worker-kill: the import's size")
    parser.add_argument(
        "--visibility", type=float, default=20, help="celery-worker-kill: the broker's visibility timeout, s"
    )
    args = parser.parse_args(argv)
    args.outage = DRILLS[args.drill].default_outage if args.outage is None else args.outage
    args.total = args.before + args.outage + args.after
    started = datetime.now(UTC)
    outcome = run_drill(args.drill, args)
    verdict = "PASS" if outcome.passed else "FAIL"
    print(f"drill {args.drill}: {verdict}")
    if args.record:
        lines = [
            f"## Chaos drill {args.drill} (issue 15) — {started:%Y-%m-%d %H:%M} UTC: {verdict}",
            "",
            f"Command: `python bench/chaos/run.py {' '.join(argv or sys.argv[1:])}`; load {args.rate}/s "
            f"(90 % ValidateLease), {args.before:.0f} s before, {args.outage:.0f} s fault, {args.after:.0f} s after; "
            f"rules' `for:` ÷ {args.compress}. Load average at the end: "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}.",
            "",
            "| window | ValidateLease ok/n | worst P95 ms | gRPC writes ok/n | errors |",
            "|---|---|---|---|---|",
        ]
        for label, w in outcome.windows.items():
            lines.append(
                f"| {label} | {w['validate']['ok']}/{w['validate']['n']} | {w['validate']['p95_ms_max']} | "
                f"{w['grpc_writes']['ok']}/{w['grpc_writes']['n']} | {w['errors']} |"
            )
        lines.append("")
        lines += [
            f"- {'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}"
            for name, ok, detail in outcome.checks
        ]
        with RESULTS.open("a") as fh:
            fh.write("\n" + "\n".join(lines) + "\n")
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
