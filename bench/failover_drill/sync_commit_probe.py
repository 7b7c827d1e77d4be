"""One Reserve through numbering.services against the HA cluster (env from deploy/local-ha),
printing JSON lines as it goes. tests/ha uses it to show that a COMMIT is never acknowledged
while no standby has it, even after DATABASE_STATEMENT_TIMEOUT_MS has passed (ADR 1400)."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402

from core.actors import Actor  # noqa: E402
from core.rls import rls_scope  # noqa: E402
from numbering import services  # noqa: E402
from pools.models import TenantPool  # noqa: E402
from tests.factories import NumberFactory  # noqa: E402

with transaction.atomic(), rls_scope(platform=True):
    tenant = TenantPool.objects.values_list("tenant_id", flat=True).first()
if tenant is None:
    print(json.dumps({"phase": "error", "detail": "no tenant pool on the cluster (run the drill first)"}))
    sys.exit(2)
number = NumberFactory(is_test=True).number  # committed before the test freezes replication
print(json.dumps({"phase": "ready", "number": number}), flush=True)
sys.stdin.readline()  # the caller freezes replication first, then says go
result = services.number_reserve(
    number=number, tenant_id=tenant, actor=Actor.service("drill-probe"), idempotency_key=f"probe-{uuid.uuid4()}"
)
print(json.dumps({"phase": "acknowledged", "version": result.number["version"]}), flush=True)
