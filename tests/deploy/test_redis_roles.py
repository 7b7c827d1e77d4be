"""Redis roles (ADR 1801): cache pressure can never evict queued Celery work.

Private redis-servers started from the committed configs (deploy/redis/cache.conf,
broker.conf) with a small maxmemory: the cache server is filled past its limit, and the
messages queued on the broker server through Celery's real transport are all still there.
The control case shows why a separate database index is not enough: on the cache's server,
filling database 0 evicts a queue kept in database 1.
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
    processes: list[subprocess.Popen[bytes]] = []

    def start(conf: str, *overrides: str, db: int = 0) -> redis.Redis:
        port = free_port()
        directory = tmp_path / f"redis-{port}"
        directory.mkdir()
        args = [binary, str(CONF / conf), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
        processes.append(subprocess.Popen([*args, *overrides], stdout=subprocess.DEVNULL))  # noqa: S603
        client = redis.Redis(port=port, db=db)
        for _ in range(100):
            try:
                client.ping()
                return client
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server {conf} did not start")

    yield start
    for process in processes:
        process.kill()
        process.wait(10)


def fill_until_evicting(cache: redis.Redis) -> int:
    """Write 64 KiB values until the server has evicted keys; the number it evicted."""
    payload = b"x" * 65536
    for i in range(2000):
        cache.set(f"numbering:lease:{i}", payload)
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
    assert cache.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
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
    # allkeys-lru picks victims across every database of the server: the queue goes too.
    assert same_server_db1.llen("celery") < QUEUED


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
