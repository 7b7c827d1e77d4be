#!/usr/bin/env python3
"""Three "regions" on loopback (issue 14, ADR 1400): etcd x3, PostgreSQL 15 x3 under
Patroni 4 with quorum commit, NATS x3 with JetStream, postgres_exporter x3.

    python3 deploy/local-ha/ha.py up [--fresh] [--async-replication]
    python3 deploy/local-ha/ha.py down [--clean]
    python3 deploy/local-ha/ha.py status
    python3 deploy/local-ha/ha.py env          # prints the service's env for the cluster

Stdlib only (the drill imports it as a library: leader(), kill_node(), isolate(), ...).
Each region's processes run as their own user (numbering-ha1..3) in their own data dir
under HA_DIR; that is what lets the drill cut one region off with iptables owner
matches on loopback, never touching any other traffic. Ports (all 127.0.0.1):

    region            r1     r2     r3
    PostgreSQL      15432  15433  15434   (HA_PG_PORT + i)
    Patroni REST    18008  18009  18010   (HA_REST_PORT + i)
    etcd client     12379  12381  12383   (HA_ETCD_PORT + 2i; peer = client + 1)
    NATS client     14222  14223  14224   (HA_NATS_PORT + i; cluster HA_NATS_CLUSTER_PORT + i)
    NATS monitor    18222  18223  18224   (HA_NATS_HTTP_PORT + i)
    exporter        19187  19188  19189   (HA_EXPORTER_PORT + i)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PG_BIN = Path(os.environ.get("HA_PG_BIN", "/usr/lib/postgresql/15/bin"))
HA_DIR = Path(os.environ.get("HA_DIR", "/tmp/numbering-ha"))
HA_VENV = Path(os.environ.get("HA_VENV", "/opt/numbering-ha/venv"))
SCOPE = "numbering-ha"
DB_NAME = "numbering"
OWNER, APP = "numbering_owner", "numbering_app"
# Patroni's minimum leader TTL is 20 s; loop_wait + 2 * retry_timeout must fit in it.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 20, 2, 5
CHAIN = "NUMBERING_HA"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class Region:
    index: int  # 0, 1, 2

    @property
    def name(self) -> str:
        return f"r{self.index + 1}"

    @property
    def user(self) -> str:
        return f"numbering-ha{self.index + 1}"

    @property
    def dir(self) -> Path:
        return HA_DIR / self.name

    @property
    def pg_port(self) -> int:
        return _port("HA_PG_PORT", 15432) + self.index

    @property
    def rest_port(self) -> int:
        return _port("HA_REST_PORT", 18008) + self.index

    @property
    def etcd_port(self) -> int:
        return _port("HA_ETCD_PORT", 12379) + 2 * self.index

    @property
    def etcd_peer_port(self) -> int:
        return self.etcd_port + 1

    @property
    def nats_port(self) -> int:
        return _port("HA_NATS_PORT", 14222) + self.index

    @property
    def nats_cluster_port(self) -> int:
        return _port("HA_NATS_CLUSTER_PORT", 16222) + self.index

    @property
    def nats_http_port(self) -> int:
        return _port("HA_NATS_HTTP_PORT", 18222) + self.index

    @property
    def exporter_port(self) -> int:
        return _port("HA_EXPORTER_PORT", 19187) + self.index

    @property
    def peer_ports(self) -> list[int]:
        """Ports other regions talk to (isolation drops exactly these)."""
        return [
            self.pg_port,
            self.rest_port,
            self.etcd_port,
            self.etcd_peer_port,
            self.nats_port,
            self.nats_cluster_port,
        ]


REGIONS = [Region(0), Region(1), Region(2)]


def log(msg: str) -> None:
    print(f"[ha] {msg}", flush=True)


# --- configuration -------------------------------------------------------------------------


def database_url(user: str = APP, *, extra: str = "") -> str:
    """libpq multi-host URL: the client tries each region and keeps the read-write one."""
    hosts = ",".join(f"127.0.0.1:{r.pg_port}" for r in REGIONS)
    query = "target_session_attrs=read-write&connect_timeout=2&tcp_user_timeout=5000" + extra
    return f"postgres://{user}@{hosts}/{DB_NAME}?{query}"


def nats_url() -> str:
    return ",".join(f"nats://127.0.0.1:{r.nats_port}" for r in REGIONS)


def service_env() -> dict[str, str]:
    return {
        "DATABASE_URL": database_url(APP),
        "DATABASE_OWNER_URL": database_url(OWNER),
        "DATABASE_TENANT_URL": database_url("numbering_tenant"),
        "NATS_URL": f"nats://127.0.0.1:{REGIONS[0].nats_port}",
        "NATS_SERVERS": nats_url(),
        "NATS_STREAM_REPLICAS": "3",
    }


def patroni_config(region: Region, *, synchronous: bool) -> dict[str, Any]:
    sync: dict[str, Any] = (
        {"synchronous_mode": "quorum", "synchronous_node_count": 1, "synchronous_mode_strict": True}
        if synchronous
        else {"synchronous_mode": False}
    )
    return {
        "scope": SCOPE,
        "name": region.name,
        "restapi": {
            "listen": f"127.0.0.1:{region.rest_port}",
            "connect_address": f"127.0.0.1:{region.rest_port}",
        },
        "etcd3": {"hosts": [f"127.0.0.1:{r.etcd_port}" for r in REGIONS], "protocol": "http"},
        "bootstrap": {
            "dcs": {
                "ttl": TTL,
                "loop_wait": LOOP_WAIT,
                "retry_timeout": RETRY_TIMEOUT,
                "maximum_lag_on_failover": 1048576,
                "failsafe_mode": False,
                **sync,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": {
                        "wal_level": "replica",
                        "hot_standby": "on",
                        "wal_log_hints": "on",
                        "max_connections": 200,
                        "max_wal_senders": 10,
                        "max_replication_slots": 10,
                        "wal_keep_size": "256MB",
                        "shared_buffers": "64MB",
                        "synchronous_commit": "on",
                        "wal_receiver_timeout": "10s",
                        "wal_sender_timeout": "10s",
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{region.pg_port}",
            "connect_address": f"127.0.0.1:{region.pg_port}",
            "data_dir": str(region.dir / "pgdata"),
            "bin_dir": str(PG_BIN),
            "pgpass": str(region.dir / "pgpass"),
            # Loopback only, local development: trust, so no password lives in the repo.
            "pg_hba": [
                "local all all trust",
                "host all all 127.0.0.1/32 trust",
                "host replication all 127.0.0.1/32 trust",
            ],
            "authentication": {
                "superuser": {"username": "postgres"},
                "replication": {"username": "replicator"},
                "rewind": {"username": "rewinder"},
            },
            "parameters": {"unix_socket_directories": str(region.dir)},
            # A killed primary comes back with WAL the new leader never saw. pg_rewind fixes
            # that; when it cannot (the rewind fails, or the timelines diverged before the
            # fork point), rebuild the member from the leader rather than leave it stopped.
            # The leader holds every acknowledged commit (quorum commit), so nothing that
            # was acknowledged is lost by wiping the old primary (ADR 1400).
            "remove_data_directory_on_rewind_failure": True,
            "remove_data_directory_on_diverged_timelines": True,
        },
        "tags": {"region": region.name},
    }


def nats_config(region: Region) -> str:
    routes = ", ".join(f"nats-route://127.0.0.1:{r.nats_cluster_port}" for r in REGIONS if r != region)
    return f"""server_name: {region.name}
listen: 127.0.0.1:{region.nats_port}
http: 127.0.0.1:{region.nats_http_port}
jetstream {{
  store_dir: "{region.dir / "nats"}"
  max_memory_store: 256MB
  max_file_store: 64GB
}}
cluster {{
  name: {SCOPE}
  listen: 127.0.0.1:{region.nats_cluster_port}
  routes: [{routes}]
}}
"""


# --- processes --------------------------------------------------------------------------------


def _ids(region: Region) -> tuple[int, int]:
    entry = pwd.getpwnam(region.user)
    return entry.pw_uid, entry.pw_gid


def _pidfile(region: Region, name: str) -> Path:
    return region.dir / f"{name}.pid"


def _spawn(region: Region, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    uid, gid = _ids(region)
    logfile = open(region.dir / "log" / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        argv,
        cwd=region.dir,
        user=uid,
        group=gid,
        extra_groups=[],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HOME": str(region.dir), **(env or {})},
    )
    logfile.close()
    # The start time makes the pid file name one process: a dead process's pid is soon
    # reused on a busy box (pid_max 32768, a backend forked per connection), and a pid file
    # of bare numbers then names a stranger: start_patroni would skip the start, kill_node
    # and pause_node would signal someone else's process.
    _pidfile(region, name).write_text(f"{proc.pid} {_started_at(proc.pid)}")
    return proc.pid


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from the state field on (the command name may hold spaces)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def _started_at(pid: int) -> str:
    fields = _stat(pid)
    return fields[19] if fields else ""  # field 22, starttime (clock ticks since boot)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat(pid)  # a zombie child of this process counts as dead
    return fields is not None and fields[0] != "Z"


def pid_of(region: Region, name: str) -> int | None:
    try:
        pid_text, _, started = _pidfile(region, name).read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if started and _started_at(pid) != started:
        return None  # that pid is now another process
    return pid if _alive(pid) else None


def postmaster_pid(region: Region) -> int | None:
    """The region's running postmaster. postmaster.pid outlives a kill -9 and its pid is soon
    someone else's: the process must work in this pgdata (the postmaster chdirs there) and
    its parent must not (else it is one of the postmaster's own children)."""
    try:
        pid = int((region.dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    here = _pgdata(region)
    if not _alive(pid) or _cwd(pid) != here:
        return None
    fields = _stat(pid)
    parent = int(fields[1]) if fields else 0
    return None if _cwd(parent) == here else pid


def _pgdata(region: Region) -> str:
    """The region's data directory as /proc/<pid>/cwd shows it (symlinks resolved)."""
    return os.path.realpath(region.dir / "pgdata")


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def _stop_all(pids: list[int | None], *, timeout: float = 20.0) -> None:
    """SIGTERM each at once, then wait for all of them (the three regions shut down side by
    side, not one after another); SIGKILL what outlives the timeout."""
    live = [pid for pid in pids if pid and _alive(pid)]
    for pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in live) and time.monotonic() < deadline:
        _reap()
        time.sleep(0.1)
    for pid in live:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def http_json(url: str, timeout: float = 2.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
            return json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:  # Patroni answers 503 with a JSON body for non-leaders
        return json.loads(exc.read().decode() or "null")


def wait_for(what: str, check, timeout: float = 90.0, interval: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what} (last: {last!r})")


def psql(port: int, sql: str, db: str = "postgres") -> str:
    out = subprocess.run(
        [str(PG_BIN / "psql"), "-X", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db, "-Atc", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip()


# --- cluster views ------------------------------------------------------------------------------


def cluster() -> dict[str, Any]:
    """Patroni's /cluster view from the first region that answers."""
    for region in REGIONS:
        try:
            data = http_json(f"http://127.0.0.1:{region.rest_port}/cluster", timeout=1.0)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def leader() -> Region | None:
    for member in cluster().get("members", []):
        if member.get("role") == "leader" and member.get("state") == "running":
            return next(r for r in REGIONS if r.name == member["name"])
    return None


def healthy(*, synchronous: bool = True) -> bool:
    """A running leader, two streaming replicas, and (quorum mode) one of them in quorum."""
    members = cluster().get("members", [])
    roles = [(m.get("role"), m.get("state")) for m in members]
    if sum(1 for role, state in roles if role == "leader" and state == "running") != 1:
        return False
    replicas = [(role, state) for role, state in roles if role != "leader"]
    if len(replicas) != 2 or any(state != "streaming" for _, state in replicas):
        return False
    return not synchronous or any(role in {"quorum_standby", "sync_standby"} for role, _ in replicas)


# --- start / stop ---------------------------------------------------------------------------------


def ensure_installed() -> None:
    if not (HA_VENV / "bin" / "patroni").exists() or shutil.which("etcd") is None:
        subprocess.run(["bash", str(HERE / "install.sh")], check=True)


def prepare_dirs(*, synchronous: bool) -> None:
    for region in REGIONS:
        for sub in ("log", "etcd", "nats"):
            (region.dir / sub).mkdir(parents=True, exist_ok=True)
        (region.dir / "patroni.yml").write_text(json.dumps(patroni_config(region, synchronous=synchronous), indent=2))
        (region.dir / "nats.conf").write_text(nats_config(region))
        # A copy: the checkout may live where the region users cannot read (e.g. under /root).
        shutil.copyfile(HERE / "exporter-queries.yaml", region.dir / "exporter-queries.yaml")
        uid, gid = _ids(region)
        os.chmod(region.dir, 0o700)
        for path in [region.dir, *region.dir.rglob("*")]:
            os.chown(path, uid, gid)
    os.chmod(HA_DIR, 0o755)


def start_etcd(region: Region) -> None:
    if pid_of(region, "etcd"):
        return
    initial = ",".join(f"{r.name}=http://127.0.0.1:{r.etcd_peer_port}" for r in REGIONS)
    _spawn(
        region,
        "etcd",
        [
            "etcd",
            "--name",
            region.name,
            "--data-dir",
            str(region.dir / "etcd"),
            "--listen-client-urls",
            f"http://127.0.0.1:{region.etcd_port}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{region.etcd_port}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{region.etcd_peer_port}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{region.etcd_peer_port}",
            "--initial-cluster",
            initial,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            SCOPE,
            "--heartbeat-interval",
            "100",
            "--election-timeout",
            "1000",
        ],
    )


def start_patroni(region: Region) -> None:
    if pid_of(region, "patroni"):
        return
    _spawn(region, "patroni", [str(HA_VENV / "bin" / "patroni"), str(region.dir / "patroni.yml")])


def start_nats(region: Region) -> None:
    if pid_of(region, "nats"):
        return
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    _spawn(region, "nats", [binary, "-c", str(region.dir / "nats.conf")])


def start_exporter(region: Region) -> None:
    if pid_of(region, "exporter"):
        return
    binary = shutil.which("prometheus-postgres-exporter")
    if binary is None:
        return
    dsn = f"postgresql://postgres@127.0.0.1:{region.pg_port}/postgres?sslmode=disable"
    _spawn(
        region,
        "exporter",
        [
            binary,
            f"--web.listen-address=127.0.0.1:{region.exporter_port}",
            f"--constantLabels=region={region.name}",
            "--disable-settings-metrics",
            f"--extend.query-path={region.dir / 'exporter-queries.yaml'}",
        ],
        env={"DATA_SOURCE_NAME": dsn},
    )


def etcd_healthy() -> bool:
    endpoints = ",".join(f"http://127.0.0.1:{r.etcd_port}" for r in REGIONS)
    out = subprocess.run(
        ["etcdctl", "--endpoints", endpoints, "endpoint", "health"],
        capture_output=True,
        text=True,
        env={**os.environ, "ETCDCTL_API": "3"},
        timeout=10,
    )
    return out.returncode == 0


def nats_ready() -> bool:
    for region in REGIONS:
        data = http_json(f"http://127.0.0.1:{region.nats_http_port}/jsz", timeout=1.0)
        if not isinstance(data, dict) or not (data.get("meta_cluster") or {}).get("leader"):
            return False
    return True


def bootstrap_database(port: int) -> None:
    for role, attrs in ((OWNER, "CREATEDB"), (APP, "NOCREATEDB")):
        exists = psql(port, f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'")
        verb = "ALTER" if exists else "CREATE"
        psql(port, f"{verb} ROLE {role} WITH LOGIN NOSUPERUSER {attrs} NOCREATEROLE NOBYPASSRLS")
    # Platform RLS scope is honoured only for members of this group (ADR 1352, as
    # deploy/local/bootstrap_db.py does on the single node).
    if not psql(port, "SELECT 1 FROM pg_roles WHERE rolname = 'numbering_platform'"):
        psql(port, "CREATE ROLE numbering_platform NOLOGIN")
    psql(port, f"GRANT numbering_platform TO {OWNER}, {APP}")
    # The restricted login role tenant requests run as (never in the platform group).
    if not psql(port, "SELECT 1 FROM pg_roles WHERE rolname = 'numbering_tenant'"):
        psql(port, "CREATE ROLE numbering_tenant WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
    if not psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"):
        psql(port, f"CREATE DATABASE {DB_NAME} OWNER {OWNER}")


def manage(*args: str, extra_env: dict[str, str] | None = None) -> None:
    env = {**os.environ, **service_env(), **(extra_env or {})}
    python = REPO / ".venv" / "bin" / "python"
    subprocess.run([str(python), str(REPO / "manage.py"), *args], check=True, env=env, cwd=REPO, timeout=300)


def listeners(ports: set[int]) -> dict[int, int]:
    """{pid: port} of every process listening on one of `ports` (from /proc, as root)."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if fields[3] == "0A" and port in ports:  # 0A: LISTEN
                    inodes[fields[9]] = port
    found: dict[int, int] = {}
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    found[int(pid_dir.name)] = inodes[target[8:-1]]
    return found


def evict_strays(ports: set[int] | None = None) -> None:
    """Nothing but this stack may answer on its ports. A server left over from an earlier run
    (its data directory gone, so `down` cannot find its pid) would otherwise take the
    service's connections: a second read-write PostgreSQL in the multi-host URL, whose
    writes the new cluster never sees (issue 14's unexplained "seeded number missing")."""
    if ports is None:
        ports = {p for r in REGIONS for p in (*r.peer_ports, r.nats_http_port, r.exporter_port)}
    strays = listeners(ports)
    for pid, port in sorted(strays.items()):
        log(f"killing a stray process {pid} listening on the stack's port {port}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while listeners(ports) and time.monotonic() < deadline:
        _reap()
        time.sleep(0.1)
    left = listeners(ports)
    if left:
        raise RuntimeError(f"processes still listen on the stack's ports after SIGKILL: {left}")


def one_cluster() -> bool:
    """Every PostgreSQL on the stack's ports is a member of one cluster (one system
    identifier) and exactly one of them accepts writes."""
    identities, writers = set(), 0
    for region in REGIONS:
        row = psql(region.pg_port, "SELECT system_identifier, pg_is_in_recovery() FROM pg_control_system()")
        identity, recovering = row.split("|")
        identities.add(identity)
        writers += recovering == "f"
    return len(identities) == 1 and writers == 1


def up(*, fresh: bool, synchronous: bool) -> None:
    ensure_installed()
    if fresh:
        down(clean=True)
        evict_strays()
    HA_DIR.mkdir(parents=True, exist_ok=True)
    prepare_dirs(synchronous=synchronous)
    started = time.monotonic()
    for region in REGIONS:
        start_etcd(region)
    wait_for("etcd quorum", etcd_healthy, timeout=60)
    log("etcd: 3 members healthy")
    for region in REGIONS:
        start_patroni(region)
    wait_for("Patroni: a leader and two streaming replicas", lambda: healthy(synchronous=synchronous), timeout=180)
    wait_for("one PostgreSQL cluster with one writer on the stack's ports", one_cluster, timeout=60)
    primary = leader()
    assert primary is not None
    log(f"PostgreSQL: leader {primary.name} (port {primary.pg_port}), quorum commit {'on' if synchronous else 'OFF'}")
    bootstrap_database(primary.pg_port)
    manage("migrate", "--database", "owner", "--no-input", "-v", "0")
    log("database migrated")
    for region in REGIONS:
        start_nats(region)
    wait_for("NATS JetStream meta leader on every node", nats_ready, timeout=60)
    manage("provision_streams", "--no-dev")
    log("NATS: 3-node JetStream cluster, streams at replicas 3")
    for region in REGIONS:
        start_exporter(region)
    (HA_DIR / "env").write_text("".join(f"export {k}='{v}'\n" for k, v in service_env().items()))
    log(f"up in {time.monotonic() - started:.1f}s; service env: source {HA_DIR / 'env'}")


def down(*, clean: bool) -> None:
    heal()
    # With clean, the data goes with them: no graceful Patroni and etcd stop to wait for (it
    # took 13 s of every drill's teardown), the crash that kill_node drills.
    for name in ("exporter", "nats", "patroni", "etcd"):
        if clean and name == "patroni":
            for region in REGIONS:
                kill_node(region)  # Patroni and every PostgreSQL process
            continue
        _stop_all([pid_of(region, name) for region in REGIONS], timeout=0 if clean and name == "etcd" else 20.0)
        if name == "patroni":
            _stop_all([postmaster_pid(region) for region in REGIONS])
    if clean and HA_DIR.exists():
        shutil.rmtree(HA_DIR)
    log("down" + (" (data removed)" if clean else ""))


# --- nemeses (the drill calls these) -------------------------------------------------------------


def kill_node(region: Region) -> None:
    """kill -9 the region's Patroni and every process of its PostgreSQL, as a crashed machine
    would lose them. Killing only the postmaster leaves its backends attached to the shared
    memory for a moment, and a Patroni restarted in that moment cannot start PostgreSQL. A
    backend forked while we kill is caught by the next pass."""
    deadline = time.monotonic() + 10
    while (pids := node_pids(region)) and time.monotonic() < deadline:  # live ones only (a zombie has no cwd)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap()
        time.sleep(0.1)
    _reap()


def start_node(region: Region) -> None:
    """Start the region's Patroni again (after a kill) and see that it stays up: a start that
    dies at once must be loud, not a region that silently never rejoins."""
    for attempt in (1, 2):
        start_patroni(region)
        time.sleep(1.0)
        if pid_of(region, "patroni"):
            return
        log(f"{region.name}: Patroni exited at start (attempt {attempt}):\n"
            f"{_tail(region.dir / 'log' / 'patroni.log', 10)}")  # fmt: skip
    raise RuntimeError(f"{region.name}: Patroni does not stay up; see {region.dir / 'log' / 'patroni.log'}")


def member(region: Region) -> dict[str, Any]:
    return next((m for m in cluster().get("members", []) if m.get("name") == region.name), {})


def reinit(region: Region) -> None:
    """Rebuild a member from the leader (patronictl reinit): the operator's last resort for a
    replica that cannot rejoin on its own."""
    subprocess.run(
        [
            str(HA_VENV / "bin" / "patronictl"),
            "-c",
            str(region.dir / "patroni.yml"),
            "reinit",
            SCOPE,
            region.name,
            "--force",
            "--wait",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc})"


def diagnose(lines: int = 25) -> str:
    """Members and the tail of every region's Patroni log: what a stuck failover looked like."""
    out = [f"members: {json.dumps(cluster().get('members', []))}"]
    for region in REGIONS:
        out.append(f"--- {region.name} patroni.log (last {lines} lines)")
        out.append(_tail(region.dir / "log" / "patroni.log", lines))
    return "\n".join(out)


def wait_healthy(what: str, *, synchronous: bool, timeout: float = 180.0) -> bool:
    """Wait for a leader and two streaming replicas. A member still not streaming after half
    the timeout is rebuilt from the leader (reinit), logged with the diagnosis. Returns
    whether a reinit was needed; raises with the diagnosis when even that does not help."""
    try:
        wait_for(what, lambda: healthy(synchronous=synchronous), timeout=timeout / 2, interval=1)
        return False
    except RuntimeError:
        pass
    log(f"{what}: not healthy after {timeout / 2:.0f}s; diagnosis:\n{diagnose()}")
    lead = leader()
    for region in REGIONS:
        if region != lead and member(region).get("state") != "streaming":
            log(f"{what}: reinit {region.name} from the leader")
            start_node(region)
            reinit(region)
    try:
        wait_for(what, lambda: healthy(synchronous=synchronous), timeout=timeout / 2, interval=1)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{diagnose()}") from None
    return True


def node_pids(region: Region) -> list[int]:
    """Patroni plus every process of the region's PostgreSQL: every process working in its
    pgdata (the postmaster and each backend chdir there). By working directory, not by
    parent: a backend forked just before a kill -9 outlives its postmaster for a moment, and
    one still attached to the shared memory stops the restarted PostgreSQL ("pre-existing
    shared memory block is still in use"; seen in a planted-bug run)."""
    pids = [p for p in (pid_of(region, "patroni"),) if p]
    here = _pgdata(region)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _cwd(int(entry.name)) == here:
            pids.append(int(entry.name))
    return pids


def pause_node(region: Region) -> list[int]:
    paused = []
    for pid in node_pids(region):
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:  # a short-lived backend that just exited
            continue
        paused.append(pid)
    return paused


def resume_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def _iptables(*args: str, check: bool = True) -> bool:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, check=check).returncode == 0


def isolate(region: Region, *, clients_too: bool = True) -> None:
    """Cut `region` off from the other two: drop, on loopback only, every packet a process of
    one side sends to a listening port of the other. With clients_too the service (root)
    loses the region as well, as a client in a surviving region would."""
    heal()
    _iptables("-N", CHAIN, check=False)
    if not _iptables("-C", "OUTPUT", "-o", "lo", "-j", CHAIN, check=False):
        _iptables("-I", "OUTPUT", "-o", "lo", "-j", CHAIN)
    ports = ",".join(str(p) for p in region.peer_ports)
    for other in REGIONS:
        if other == region:
            continue
        other_ports = ",".join(str(p) for p in other.peer_ports)
        for owner, dports in ((region.user, other_ports), (other.user, ports)):
            _iptables(
                "-A", CHAIN, "-p", "tcp", "-m", "owner", "--uid-owner", owner,
                "-m", "multiport", "--dports", dports, "-j", "DROP",
            )  # fmt: skip
    if clients_too:
        _iptables(
            "-A", CHAIN, "-p", "tcp", "-m", "owner", "--uid-owner", "0",
            "-m", "multiport", "--dports", f"{region.pg_port},{region.nats_port}", "-j", "DROP",
        )  # fmt: skip


def heal() -> None:
    if shutil.which("iptables") is None:
        return
    if _iptables("-C", "OUTPUT", "-o", "lo", "-j", CHAIN, check=False):
        _iptables("-D", "OUTPUT", "-o", "lo", "-j", CHAIN)
    _iptables("-F", CHAIN, check=False)
    _iptables("-X", CHAIN, check=False)


def status() -> int:
    data = cluster()
    for member in data.get("members", []):
        print(
            f"{member.get('name')}: {member.get('role')} {member.get('state')} "
            f"lag={member.get('lag', 0)} port={member.get('port')}"
        )
    for region in REGIONS:
        procs = {n: pid_of(region, n) for n in ("etcd", "patroni", "nats", "exporter")}
        print(f"{region.name}: " + " ".join(f"{n}={'up' if p else 'down'}" for n, p in procs.items()))
    return 0 if data else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("--fresh", action="store_true", help="remove HA_DIR first")
    p_up.add_argument(
        "--async-replication", action="store_true", help="planted bug: synchronous_mode off (the drill's guard run)"
    )
    p_down = sub.add_parser("down")
    p_down.add_argument("--clean", action="store_true", help="also remove HA_DIR")
    sub.add_parser("status")
    sub.add_parser("env")
    args = parser.parse_args(argv)
    if args.cmd == "up":
        up(fresh=args.fresh, synchronous=not args.async_replication)
    elif args.cmd == "down":
        down(clean=args.clean)
    elif args.cmd == "status":
        return status()
    else:
        for key, value in service_env().items():
            print(f"export {key}='{value}'")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
