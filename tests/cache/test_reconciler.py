"""The reconciler (ADR 1200): samples recently changed numbers, repairs, counts divergence."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from numbering import cache_epoch, cache_sync, lease_cache, services, tasks
from numbering.lifecycle import State
from tests.cache.conftest import RedisProcess
from tests.grpc_server.conftest import as_platform
from tests.numbering.helpers import OPS, number_in


def test_divergent_entries_are_repaired_and_counted(committed: None, cache_redis: RedisProcess, alice: Any) -> None:
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    quiet = as_platform(lambda: number_in(State.ASSIGNED, alice))
    as_platform(lambda: cache_sync.CacheSync().drain_once(cache_epoch.read()))
    client = cache_redis.client()
    version, epoch, entry = lease_cache.read_value(n.number, client)
    # What a lost write leaves behind: an entry that still says ASSIGNED after a recall.
    as_platform(lambda: services.number_recall(number=n.number, actor=OPS))
    lease_cache.write_entry(n.number, version + 5, entry, epoch=epoch, client=client, force=True, publish=False)
    before = cache_sync.RECONCILE_DIVERGENT._value.get()
    out = StringIO()
    call_command("reconcile_lease_cache", sample=50, stdout=out)
    assert "1 divergent" in out.getvalue()
    assert cache_sync.RECONCILE_DIVERGENT._value.get() - before == 1
    repaired = lease_cache.read_value(n.number, client)
    assert repaired is not None and repaired[2]["state"] != "ASSIGNED"
    assert lease_cache.read_value(quiet.number, client)[2]["state"] == "ASSIGNED"  # agreed: untouched
    assert tasks.lease_cache_reconcile() == {"checked": 2, "divergent": 0}  # the beat job: nothing left


def test_reconcile_sample_must_be_positive(committed: None) -> None:
    with pytest.raises(CommandError, match="--sample: must be at least 1"):
        call_command("reconcile_lease_cache", sample=0)
