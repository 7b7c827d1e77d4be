"""Test profile: the same real services, a separate Redis database and quieter logs."""

from __future__ import annotations

import os

os.environ.setdefault("NUMBERING_ENV", "test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Importing config.wsgi (some tests do, at collection) must not start a metrics server and
# its database reading thread in the test process: that thread's session would outlive the
# test database. A test that wants the server passes a port.
os.environ.setdefault("WEB_METRICS_PORT", "0")
# The test process runs in-process gRPC servers and clients and starts subprocesses (exec
# right after fork): gRPC's fork handlers would run in each child and can abort it
# (grpc/grpc#32992; seen in the failover drill). Set before grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
# Test-only publisher keys for the consumers' signature check (ADR 1353); not secrets.
os.environ.setdefault(
    "EVENT_PUBLISHER_KEYS", '{"compliance-service": "test-compliance-key", "tenant-service": "test-tenant-key"}'
)

# Tests write approved prices straight into the table and search at once; the schedule cache
# is tested with its own setting (tests/numbering/test_price_schedule.py).
os.environ.setdefault("TIER_PRICE_CACHE_SECONDS", "0")

from config.settings.base import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]  # noqa: F405
