"""The service's processes for a bench or a drill, on their own database and free ports.

    stack = Stack(db_suffix="mix", grpc_workers=2, split=True)
    stack.prepare()            # fresh database, migrations, dev PKI
    stack.seed([...])          # bench/lifecycle_mix/seed.py arguments -> Dataset
    stack.start()              # grpc (hot [+ write]), gunicorn, cache-sync, relay
    ... stack.target(), stack.cpu_seconds() ...
    stack.stop()

`split=True` runs the hot path (ValidateLease, Lookup) and the mutations as two gRPC pools in
separate processes (ADR 1101): writes then cannot take the hot path's CPU through the GIL.
Every process gets a free metrics port (`metrics_ports`), so a drill's Prometheus can scrape it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import grpc
import psycopg

from bench.lifecycle_mix.mix import VALIDATE_CN, Dataset, Target, _creds, process_cpu_seconds
from bench.ports import free_port
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("DATABASE_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
TEMPLATE_PREFIX = "bench_template_"
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
OUT = ROOT / "bench" / "out"


def _bootstrap(env: dict[str, str], *, migrate: bool) -> None:
    """The roles and the database `env` names (deploy/local/bootstrap_db.py), then migrated."""
    subprocess.run([PY, "deploy/local/bootstrap_db.py"], cwd=ROOT, env=env, check=True, capture_output=True)
    if migrate:
        subprocess.run(
            [PY, "manage.py", "migrate", "--database", "owner", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True
        )


class Stack:
    def __init__(
        self,
        *,
        db_suffix: str = "mix",
        grpc_workers: int = 1,
        write_workers: int = 1,
        write_replicas: int = 1,
        web_workers: int = 1,
        web_threads: int = 8,
        split: bool = False,
        relay: bool = True,
        celery: bool = False,
        pin: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.split, self.relay, self.celery = split, relay, celery
        # pin: the pool serving ValidateLease gets CPU 0 to itself (as a pod gets its cores); every
        # other service process runs on CPU 1, so the comparison gives ValidateLease the same CPU.
        self.pin = pin
        self.grpc_workers, self.write_workers = grpc_workers, write_workers
        self.write_replicas = write_replicas
        self.web_workers, self.web_threads = web_workers, web_threads
        self.certs = ROOT / ".dev" / "grpc"
        self.env = self._env(db_suffix, extra_env or {})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.ports: dict[str, int] = {}
        self.metrics_ports: dict[str, int] = {}
        OUT.mkdir(parents=True, exist_ok=True)

    def _env(self, suffix: str, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        app = urlparse(env.get("DATABASE_URL", "postgres://numbering_app@127.0.0.1:5432/numbering"))
        owner = urlparse(env.get("DATABASE_OWNER_URL", "postgres://numbering_owner@127.0.0.1:5432/numbering"))
        tenant = urlparse(env.get("DATABASE_TENANT_URL", "postgres://numbering_tenant@127.0.0.1:5432/numbering"))
        self.db_name = f"{app.path.lstrip('/')}_{suffix}"
        for var, url in (("DATABASE_URL", app), ("DATABASE_OWNER_URL", owner), ("DATABASE_TENANT_URL", tenant)):
            env[var] = urlunparse(url._replace(path="/" + self.db_name))
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.base",
            NUMBERING_ENV="dev",
            LOG_LEVEL="WARNING",
            # As in production (deploy/k8s/configmap.yaml): with DEBUG on, Django wraps every
            # cursor to record its statements, a cost no pod pays (BENCH_DJANGO_DEBUG=1 to see it).
            DJANGO_DEBUG=os.environ.get("BENCH_DJANGO_DEBUG", "0"),
            GRPC_TLS_CERT_FILE=str(self.certs / "server.pem"),
            GRPC_TLS_KEY_FILE=str(self.certs / "server.key"),
            GRPC_TLS_CLIENT_CA_FILE=str(self.certs / "ca.pem"),
        )
        env.pop("GRPC_INSECURE", None)
        env.update(extra)
        return env

    # --- set-up ------------------------------------------------------------------------

    def prepare(self, *, fresh: bool = True, database: bool = True) -> None:
        """database=False: the database exists and is migrated already (the HA stack's). The
        dev PKI and the streams (each a Python start-up of a second or two) are made while the
        database is."""
        side = [
            subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
            for argv in ([PY, "-m", "grpc_server.devcerts", str(self.certs)], [PY, "manage.py", "provision_streams"])
        ]
        try:
            self._prepare_database(fresh=fresh, database=database)
        except BaseException:
            for proc in side:  # the database's failure is the one to report
                proc.kill()
                proc.wait()
            raise
        for proc in side:
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise subprocess.CalledProcessError(proc.returncode, proc.args, out)

    def _prepare_database(self, *, fresh: bool, database: bool) -> None:
        if fresh and database:
            # A copy of a migrated template (CREATE DATABASE … TEMPLATE takes a fraction of a
            # second, migrating takes seconds: every chaos drill and mix test starts one).
            template = self._migrated_template()
            owner = urlparse(self.env["DATABASE_OWNER_URL"]).username
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{self.db_name}" OWNER "{owner}" TEMPLATE "{template}"')
        if database:
            # A kept database takes the migrations it lacks; a fresh copy has them all.
            _bootstrap(self.env, migrate=not fresh)

    def _migrated_template(self) -> str:
        """An empty database with every migration applied, named by what shapes it (the
        migration files and the role names), built once and kept; a new migration set builds a
        new one and drops the old. Marked by a comment only once fully migrated, so a build
        that died half-way is built again."""
        digest = hashlib.sha256()
        for var in ("DATABASE_URL", "DATABASE_OWNER_URL", "DATABASE_TENANT_URL"):
            digest.update(f"{urlparse(self.env[var]).username}\n".encode())
        for path in sorted(ROOT.glob("*/migrations/*.py")):
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
        name = f"{TEMPLATE_PREFIX}{digest.hexdigest()[:16]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if row is not None and row[0] == "migrated":
                return name
            stale = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [TEMPLATE_PREFIX + "%"])
            for (old,) in stale.fetchall():
                conn.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
        env = dict(self.env)
        for var in ("DATABASE_URL", "DATABASE_OWNER_URL", "DATABASE_TENANT_URL"):
            env[var] = urlunparse(urlparse(env[var])._replace(path="/" + name))
        _bootstrap(env, migrate=True)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"COMMENT ON DATABASE \"{name}\" IS 'migrated'")
        return name

    def seed(self, args: list[str]) -> Dataset:
        path = OUT / f"{self.db_name}-dataset.json"
        subprocess.run([PY, "bench/lifecycle_mix/seed.py", str(path), *args], cwd=ROOT, env=self.env, check=True)
        return Dataset.load(path)

    # --- processes ---------------------------------------------------------------------

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        if self.pin and os.cpu_count() and (os.cpu_count() or 1) > 1 and argv[0] != "taskset":
            argv = ["taskset", "-c", "0" if name == "grpc_hot" else "1", *argv]
        # Whose is each connection in pg_stat_activity (bench/lifecycle_mix/connections.py).
        env = dict(env, PGAPPNAME=f"bench-{name}")
        self.specs[name] = (argv, env)
        log = open(OUT / f"{self.db_name}-{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603

    def kill(self, name: str) -> None:
        """SIGKILL one process and its children (a crashed pod)."""
        proc = self.procs[name]
        for pid in reversed(process_tree(proc.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)

    def restart(self, name: str) -> None:
        """Start a killed process again, as the orchestrator would."""
        argv, env = self.specs[name]
        self._start(name, argv, env)

    def _start_grpc(self, name: str, workers: int, pool: str) -> None:
        self.ports[name] = free_port()
        self.metrics_ports[name] = free_port()
        argv = [PY, "manage.py", "grpcserver", "--workers", str(workers), "--port", str(self.ports[name])]
        self._start(name, [*argv, "--metrics-port", str(self.metrics_ports[name])], dict(self.env, GRPC_POOL=pool))

    def start(self) -> None:
        if self.split:
            self._start_grpc("grpc_hot", self.grpc_workers, "hot")
            for replica in range(self.write_replicas):
                self._start_grpc(
                    "grpc_write" if replica == 0 else f"grpc_write{replica + 1}", self.write_workers, "mutations"
                )
        else:
            self._start_grpc("grpc_hot", self.grpc_workers, "all")
            self.ports["grpc_write"] = self.ports["grpc_hot"]
        self.ports["web"] = free_port()
        self.metrics_ports["web"] = free_port()
        web_env = dict(
            self.env,
            WEB_BIND=f"127.0.0.1:{self.ports['web']}",
            WEB_WORKERS=str(self.web_workers),
            WEB_THREADS=str(self.web_threads),
            WEB_METRICS_PORT=str(self.metrics_ports["web"]),
            WEB_METRICS_READ_SECONDS="2",  # the drills' scrape interval (ADR 1506)
        )
        self._start("web", [GUNICORN, "-c", "gunicorn.conf.py", "config.wsgi:application"], web_env)
        self.metrics_ports["cachesync"] = free_port()
        self._start(
            "cachesync",
            [PY, "manage.py", "run_cache_sync"],
            dict(self.env, LEASE_CACHE_SYNC_METRICS_PORT=str(self.metrics_ports["cachesync"])),
        )
        if self.relay:
            self.metrics_ports["relay"] = free_port()
            self._start(
                "relay",
                [PY, "manage.py", "run_outbox_relay"],
                dict(self.env, OUTBOX_RELAY_METRICS_PORT=str(self.metrics_ports["relay"])),
            )
        if self.celery:
            # The scheduled jobs as production runs them: beat and a worker, separate processes
            # (deploy/entrypoint.sh's flags). No keyspace listener: the safety net is the only
            # cleaner of expired reservations here (the celery-worker-kill drill relies on it).
            celery = [str(Path(PY).with_name("celery")), "--app=config.celery:app", "--quiet"]
            self.metrics_ports["worker"] = free_port()
            self._start(
                "worker",
                [
                    *celery,
                    "worker",
                    "--loglevel=INFO",
                    "--pool=threads",
                    "--concurrency=2",
                    "--without-gossip",
                    "--without-mingle",
                    f"--hostname=bench-{self.db_name}@%h",
                ],  # fmt: skip
                dict(self.env, CELERY_WORKER_METRICS_PORT=str(self.metrics_ports["worker"])),
            )
            schedule = OUT / f"{self.db_name}-celerybeat-schedule"
            schedule.unlink(missing_ok=True)
            self._start("beat", [*celery, "beat", "--loglevel=INFO", f"--schedule={schedule}"], self.env)
        self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        creds = _creds(self.certs, VALIDATE_CN)
        assert creds is not None
        options = [("grpc.ssl_target_name_override", "localhost")]
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {OUT}/{self.db_name}-{name}.log")
            try:
                with grpc.secure_channel(f"127.0.0.1:{self.ports['grpc_hot']}", creds, options=options) as channel:
                    pb_grpc.NumberingServiceStub(channel).ValidateLease(
                        pb.ValidateLeaseRequest(number="+93797000000", tenant_id=str(uuid0())), timeout=1
                    )
                with socket.create_connection(("127.0.0.1", self.ports["web"]), timeout=1):
                    pass
                time.sleep(1.0)  # the other workers finish starting
                return
            except (grpc.RpcError, OSError):
                time.sleep(0.3)
        raise RuntimeError("the service did not start")

    def target(self) -> Target:
        return Target(
            grpc_hot=f"127.0.0.1:{self.ports['grpc_hot']}",
            grpc_write=",".join(
                f"127.0.0.1:{port}" for name, port in sorted(self.ports.items()) if name.startswith("grpc_write")
            ),
            web=f"http://127.0.0.1:{self.ports['web']}",
            certs=self.certs,
        )

    def pids(self, *names: str) -> list[int]:
        return [p.pid for n, p in self.procs.items() if (not names or n in names) and p.poll() is None]

    def cpu_seconds(self, *names: str) -> float:
        return process_cpu_seconds(self.pids(*names))

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()


def process_tree(pid: int) -> list[int]:
    """pid and its descendants, parents first (from /proc)."""
    out, stack = [], [pid]
    while stack:
        current = stack.pop()
        out.append(current)
        with contextlib.suppress(OSError):
            stack.extend(int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split())
    return out


def uuid0() -> str:
    return "00000000-0000-0000-0000-000000000000"


if __name__ == "__main__":  # pragma: no cover
    sys.exit("import Stack from bench/lifecycle_mix/run.py")
