"""The admin in a real browser: headless Chromium (Debian package, `make browser`) driven
by Playwright against a live server on committed data. Screenshots go to test-output/admin/."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction

from contracts.imports import import_file
from core import authz as roles
from core.actors import Actor
from core.rls import rls_scope
from numbering.lifecycle import State
from numbering.models import Number
from tests.admin.conftest import staff_user
from tests.contracts.conftest import HEADER, install_key, msisdn_rows, sign_csv
from tests.factories import InventoryPoolFactory, IssuerFactory, TenantFactory, TenantPoolFactory
from tests.numbering.helpers import number_in

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUT = Path(settings.BASE_DIR) / "test-output" / "admin"


@pytest.fixture
def server(committed: Any) -> Iterator[str]:
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread

    thread = LiveServerThread("127.0.0.1", StaticFilesHandler, connections_override={}, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    try:
        yield f"http://127.0.0.1:{thread.port}"
    finally:
        thread.terminate()
        thread.join(timeout=10)
        _wait_for_server_sessions_to_close()


def _wait_for_server_sessions_to_close(timeout: float = 2.0) -> None:
    """Request threads keep their DB connections (CONN_MAX_AGE) until their keep-alive
    socket closes; the test database can only be dropped once they are gone. Wait for
    them, then end stragglers (test database only)."""
    import time

    import psycopg
    from django.db import connections

    from tests.conftest import superuser_dsn

    connections.close_all()
    app_user = settings.DATABASES["default"]["USER"]
    query = "FROM pg_stat_activity WHERE datname = current_database() AND usename = %s AND pid <> pg_backend_pid()"
    deadline = time.monotonic() + timeout
    with psycopg.connect(superuser_dsn(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            (count,) = conn.execute(f"SELECT count(*) {query}", [app_user]).fetchone()
            if count == 0:
                return
            time.sleep(0.1)
        conn.execute(f"SELECT pg_terminate_backend(pid) {query}", [app_user])


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls
    # are still synchronous (Django's async-safety check would refuse them).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            browser.close()


def test_staff_journey_overview_search_import_wizard_and_recall(server, browser_page, settings, tmp_path):
    settings.INVENTORY_IMPORT_DIR = tmp_path / "imports"
    pool = InventoryPoolFactory(code="GENERAL_MSISDN", kind="MSISDN")
    roshan = IssuerFactory(code="ROSHAN", msisdn_prefixes=["79", "72"])
    install_key(roshan, "roshan")
    first = sign_csv(HEADER + msisdn_rows(30))
    assert import_file(
        issuer_code="ROSHAN", csv_file=first.csv, signature=first.signature, actor=Actor.system("browser-test")
    ).committed
    tenant = TenantFactory(name="Kabul Commerce Bank")
    TenantPoolFactory(tenant=tenant, inventory_pools=[pool])
    with transaction.atomic(), rls_scope(platform=True):  # the helper reads as the platform
        leased = number_in(State.ASSIGNED, tenant, issuer=roshan, pool=pool)
    staff_user("olga", roles.COMMERCE_OPS)
    page = browser_page

    # Log in as staff.
    page.goto(f"{server}/admin/login/?next=/admin/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "pw-olga")
    page.click("input[type=submit]")
    page.wait_for_selector("#inventory-shortcuts")

    # The overview: charts rendered as SVG from live counts.
    page.click("text=Inventory overview")
    page.wait_for_selector("#chart-issuer-kind-state svg rect.bar-segment")
    assert page.locator("#chart-issuer-kind-state rect.bar-segment").count() >= 2  # AVAILABLE + ASSIGNED
    assert page.locator("#chart-pool-utilisation rect.pool-used").count() == 1
    box = page.locator("#chart-issuer-kind-state rect.bar-segment").first.bounding_box()
    assert box and box["width"] > 10  # really drawn, not just present
    page.screenshot(path=str(OUT / "1-overview.png"), full_page=True)

    # Find a number by its national format.
    national = "0" + leased.number[3:]
    page.goto(f"{server}/admin/numbering/number/")
    page.fill("#searchbar", national)
    page.press("#searchbar", "Enter")
    page.wait_for_selector(f"#result_list a:text-is('{leased.number}')")
    assert page.locator("#result_list tbody tr").count() == 1
    page.screenshot(path=str(OUT / "2-search-national-format.png"), full_page=True)

    # The import wizard end to end with a signed file (one bad row; commit valid rows).
    signed = sign_csv(HEADER + msisdn_rows(5, start=500) + "+93731234567,MSISDN,,R-2026-01\n")
    csv_file, sig_file = tmp_path / "roshan-2026-02.csv", tmp_path / "roshan-2026-02.csv.sig"
    csv_file.write_bytes(signed.csv)
    sig_file.write_bytes(signed.signature)
    page.goto(f"{server}/admin/contracts/inventoryimport/")
    page.click("#start-import")
    page.select_option("#id_issuer", "ROSHAN")
    page.set_input_files("#id_csv_file", str(csv_file))
    page.set_input_files("#id_signature", str(sig_file))
    page.screenshot(path=str(OUT / "3-wizard-upload.png"), full_page=True)
    page.click("#upload-submit")
    page.wait_for_selector("#signature-result .sig-ok")
    assert "outside ROSHAN" in page.inner_text("#import-report")
    page.screenshot(path=str(OUT / "4-wizard-preview.png"), full_page=True)
    page.check("#mode-valid-rows")
    page.click("#commit-submit")
    page.wait_for_selector("#import-result")
    assert re.search(r"COMMITTED: 5 imported, 1 invalid", page.inner_text("#import-result"))
    assert page.get_attribute("#import-progress", "value") == "6"
    page.screenshot(path=str(OUT / "5-wizard-committed.png"), full_page=True)
    with transaction.atomic(), rls_scope(platform=True):
        assert Number.objects.filter(number="+93790000500", state="AVAILABLE").exists()

    # Recall a leased number from its page and see the audit entry.
    page.goto(f"{server}/admin/numbering/number/{leased.pk}/change/")
    assert page.inner_text("#number-state") == "ASSIGNED"
    page.click("#action-recall")
    page.wait_for_selector("text=Recall: 1 number(s) done.")
    assert page.inner_text("#number-state") == "QUARANTINED"
    actions = page.locator("#number-audit .audit-row .audit-action").all_inner_texts()
    actors = page.locator("#number-audit .audit-row .audit-actor").all_inner_texts()
    assert actions[0] == "recall" and actors[0] == "user:olga"
    page.screenshot(path=str(OUT / "6-number-recalled.png"), full_page=True)
    with transaction.atomic(), rls_scope(platform=True):
        assert Number.objects.get(pk=leased.pk).state == "QUARANTINED"
