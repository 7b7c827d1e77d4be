"""The inventory CSV streams after the view returned, i.e. after its request transaction
closed: with real commits (no test transaction, no outer RLS scope) the rows must still be
read in one transaction with the platform scope, held for the whole stream and closed after."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.db import connection, transaction
from django.test import Client

from core.rls import rls_scope
from numbering.lifecycle import State
from numbering.models import Number
from tests.api.conftest import make_token
from tests.factories import InventoryPoolFactory, TenantFactory, TenantPoolFactory
from tests.numbering.helpers import number_in


def test_inventory_stream_reads_every_tenant_row_in_its_own_platform_transaction(committed: Any) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        pool = InventoryPoolFactory()
        tenant = TenantFactory(name="Streamco")
        TenantPoolFactory(tenant=tenant, inventory_pools=[pool])
        held = {
            number_in(State.ASSIGNED, tenant, pool=pool).number,
            number_in(State.RESERVED, tenant, pool=pool).number,
        }
        number_in(State.AVAILABLE, None, pool=pool)
    # Unscoped, the app role sees only AVAILABLE inventory (RLS): the export must not rely on that.
    assert Number.objects.count() == 1

    reply = Client().get("/api/admin/v1/exports/inventory.csv", HTTP_AUTHORIZATION=f"Bearer {make_token('auditor')}")
    assert reply.status_code == 200 and not connection.in_atomic_block  # the request transaction is closed
    chunks = iter(reply.streaming_content)
    header = next(chunks)
    first = next(chunks)
    assert connection.in_atomic_block  # one transaction for the whole stream ...
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.scope', true)")
        assert cursor.fetchone()[0] == "platform"  # ... in the platform scope
    rest = b"".join(chunks)
    reply.close()
    assert not connection.in_atomic_block  # ... and closed when the stream ends
    rows = list(csv.DictReader(io.StringIO((header + first + rest).decode(), newline="")))
    assert len(rows) == 3
    assert {r["number"] for r in rows if r["state"] in {"ASSIGNED", "RESERVED"}} == held
    assert {r["holder_name"] for r in rows if r["number"] in held} == {"Streamco"}
