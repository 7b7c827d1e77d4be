"""Redis roles (ADR 1801, 1507): cache pressure can never cost queued Celery work.

Private redis-servers started from the committed configs (deploy/redis/cache.conf,
broker.conf) with a small maxmemory: the cache server is filled past its limit, and the
messages queued on the broker server through Celery's real transport are all still there.
The control case shows why a separate database index is not enough: the cache's server
persists nothing, so a restart loses a queue kept in database 1 (and under allkeys-lru,
which it ran before ADR 1507, filling database 0 evicted that queue).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.grpc_server.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "redis"
QUEUED = 200


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Callable[..., redis.Redis]]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is required (deploy/local/ensure_services.sh installs it)"
    processes: dict[int, tuple[list[str], subprocess.Popen[bytes]]] = {}

    def start(conf: str, *overrides: str, db: int = 0) -> redis.Redis:
        port = free_port()
        directory = tmp_path / f"redis-{port}"
        directory.mkdir()
        args = [binary, str(CONF / conf), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
        return run([*args, *overrides], port, db)

    def run(argv: list[str], port: int, db: int = 0) -> redis.Redis:
        processes[port] = (argv, subprocess.Popen(argv, stdout=subprocess.DEVNULL))  # noqa: S603
        client = redis.Redis(port=port, db=db)
        for _ in range(100):
            try:
                client.ping()
                return client
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server {argv[1]} did not start")

    def restart(client: redis.Redis) -> None:
        port = client.connection_pool.connection_kwargs["port"]
        argv, process = processes[port]
        process.kill()
        process.wait(10)
        run(argv, port)

    start.restart = restart  # type: ignore[attr-defined]
    yield start
    for _, process in processes.values():
        process.kill()
        process.wait(10)


def fill_until_evicting(cache: redis.Redis) -> int:
    """Write 64 KiB values, with a TTL as every cached value has, until the server has evicted
    keys; the number it evicted."""
    payload = b"x" * 65536
    for i in range(2000):
        cache.set(f"numbering:lease:{i}", payload, ex=600)
        evicted = int(cache.info("stats")["evicted_keys"])
        if evicted > 50:
            return evicted
    raise AssertionError("the cache server never evicted anything")


def queue(broker_url: str) -> Celery:
    app = Celery("numbering-test", broker=broker_url)
    app.conf.update(task_publish_retry=False, broker_connection_timeout=2)
    for i in range(QUEUED):
        app.send_task("numbering.tasks.reservation_safety_net", kwargs={"n": i})
    return app


def test_the_committed_configs_give_each_role_its_policy(start_redis: Callable[..., redis.Redis]) -> None:
    cache = start_redis("cache.conf")
    broker = start_redis("broker.conf")
    assert cache.config_get("maxmemory-policy")["maxmemory-policy"] == "volatile-lru"
    assert int(cache.config_get("maxmemory")["maxmemory"]) > 0, "a cache without a limit never evicts, it grows"
    assert broker.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert broker.config_get("appendonly")["appendonly"] == "yes"


def test_filling_the_cache_server_leaves_every_queued_task_on_the_broker(
    start_redis: Callable[..., redis.Redis],
) -> None:
    cache = start_redis("cache.conf", "--maxmemory", "4mb")
    broker = start_redis("broker.conf", "--maxmemory", "64mb")
    port = broker.connection_pool.connection_kwargs["port"]
    queue(f"redis://127.0.0.1:{port}/0")
    assert fill_until_evicting(cache) > 50
    assert broker.llen("celery") == QUEUED


def test_a_database_index_on_the_cache_server_is_not_enough(start_redis: Callable[..., redis.Redis]) -> None:
    cache = start_redis("cache.conf", "--maxmemory", "4mb")
    port = cache.connection_pool.connection_kwargs["port"]
    queue(f"redis://127.0.0.1:{port}/1")
    same_server_db1 = redis.Redis(port=port, db=1)
    assert same_server_db1.llen("celery") == QUEUED
    fill_until_evicting(cache)
    # volatile-lru spares keys without a TTL, a queue's included (allkeys-lru took it)...
    assert same_server_db1.llen("celery") == QUEUED
    # ...but the cache server persists nothing: a restart loses every queued task.
    start_redis.restart(cache)  # type: ignore[attr-defined]
    assert same_server_db1.llen("celery") == 0


def test_a_broker_on_the_cache_server_is_refused_at_start() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "REDIS_URL": "redis://127.0.0.1:6379/3",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/4",
    }
    env.pop("NUMBERING_ENV", None)
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "CELERY_BROKER_URL must name a different Redis server than REDIS_URL" in proc.stderr


def test_the_default_broker_is_the_local_broker_server_with_the_cache_database_index() -> None:
    from django.conf import settings

    assert settings.CELERY_BROKER_URL.startswith(f"redis://127.0.0.1:{settings.REDIS_BROKER_PORT}/")
    assert settings.CELERY_BROKER_URL.rsplit("/", 1)[1] == settings.REDIS_URL.rsplit("/", 1)[1]


def test_the_production_secrets_point_the_broker_at_its_own_server() -> None:
    import yaml

    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "externalsecrets.yaml").read_text()) if d]
    app = next(d for d in docs if d["metadata"]["name"] == "numbering-secrets")
    data = app["spec"]["target"]["template"]["data"]
    cache_host = data["REDIS_URL"].rsplit("@", 1)[1].split("/")[0]
    broker_host = data["CELERY_BROKER_URL"].rsplit("@", 1)[1].split("/")[0]
    assert cache_host != broker_host
