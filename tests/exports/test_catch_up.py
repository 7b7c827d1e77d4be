"""The monthly loop (exports.services.regulator_export_catch_up): which periods run, which
are skipped, and how a failure is reported — the decision the Celery task and the
`export_regulator_report --pending` command only call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.actors import Actor
from core.clock import FakeClock
from core.locks import JOBS, key_for
from exports.models import RegulatorExport
from exports.services import lock_name, regulator_export_catch_up
from tests.conftest import owner_dsn
from tests.s3server import free_port

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test:catch-up")
MID_JULY_2025 = datetime(2025, 7, 15, 12, 0, tzinfo=UTC)


def _status(period: str) -> str:
    return RegulatorExport.objects.get(period=period).status


def test_last_month_and_every_unfinished_earlier_month_run_uploaded_months_are_left_alone(
    worm_bucket: str, fake_clock: FakeClock
) -> None:
    fake_clock.set(MID_JULY_2025)
    RegulatorExport.objects.create(period="2020-01", status=RegulatorExport.Status.FAILED, error="boom")
    RegulatorExport.objects.create(period="2020-02", status=RegulatorExport.Status.PENDING)
    RegulatorExport.objects.create(period="2020-03", status=RegulatorExport.Status.UPLOADED, attempts=1)
    outcome = regulator_export_catch_up(actor=ACTOR)
    assert outcome.ok and outcome.failed == []
    assert list(outcome.results) == ["2020-01", "2020-02", "2025-06"]  # oldest first; 2020-03 untouched
    assert {p: _status(p) for p in ("2020-01", "2020-02", "2025-06")} == dict.fromkeys(
        ("2020-01", "2020-02", "2025-06"), RegulatorExport.Status.UPLOADED
    )
    assert RegulatorExport.objects.get(period="2020-03").attempts == 1
    assert RegulatorExport.objects.get(period="2025-06").triggered_by == "system:test:catch-up"
    assert "2025-06: export 2025-06 uploaded" in outcome.summary

    again = regulator_export_catch_up(actor=ACTOR)  # idempotent: only last month is looked at, and it is done
    assert again.ok and list(again.results) == ["2025-06"] and "nothing changed" in again.results["2025-06"]


def test_a_month_that_has_not_ended_is_skipped_not_failed(worm_bucket: str, fake_clock: FakeClock) -> None:
    fake_clock.set(MID_JULY_2025)
    RegulatorExport.objects.create(period="2025-07", status=RegulatorExport.Status.FAILED)  # the current month
    outcome = regulator_export_catch_up(actor=ACTOR)
    assert outcome.ok and "has not ended" in outcome.results["2025-07"]
    assert _status("2025-07") == RegulatorExport.Status.FAILED and _status("2025-06") == RegulatorExport.Status.UPLOADED

    fake_clock.set(datetime(2025, 8, 1, 0, 0, tzinfo=UTC))  # 04:30 on 1 August in Kabul: July is over
    outcome = regulator_export_catch_up(actor=ACTOR)
    assert outcome.ok and list(outcome.results) == ["2025-07"] and _status("2025-07") == RegulatorExport.Status.UPLOADED


def test_a_failed_month_is_reported_and_the_others_still_run(
    worm_bucket: str, fake_clock: FakeClock, settings: Any
) -> None:
    fake_clock.set(MID_JULY_2025)
    RegulatorExport.objects.create(period="2020-01", status=RegulatorExport.Status.FAILED)
    endpoint = settings.S3_ENDPOINT_URL
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # the store goes away
    outcome = regulator_export_catch_up(actor=ACTOR)
    assert not outcome.ok and outcome.failed == ["2020-01", "2025-06"]
    assert outcome.summary.startswith("regulator export failed for 2020-01, 2025-06: ")
    assert _status("2020-01") == _status("2025-06") == RegulatorExport.Status.FAILED

    settings.S3_ENDPOINT_URL = endpoint
    outcome = regulator_export_catch_up(actor=ACTOR)
    assert outcome.ok and _status("2020-01") == _status("2025-06") == RegulatorExport.Status.UPLOADED


def test_a_month_running_elsewhere_is_reported_for_retry_and_the_others_still_run(
    worm_bucket: str, fake_clock: FakeClock
) -> None:
    fake_clock.set(MID_JULY_2025)
    RegulatorExport.objects.create(period="2020-01", status=RegulatorExport.Status.FAILED)
    with psycopg.connect(owner_dsn(), autocommit=True) as other, other.cursor() as cur:
        # another runner holds 2020-01
        cur.execute("SELECT pg_advisory_lock(%s, %s)", [JOBS, key_for(lock_name("2020-01"))])
        outcome = regulator_export_catch_up(actor=ACTOR)
    assert outcome.failed == ["2020-01"] and "already running elsewhere" in outcome.results["2020-01"]
    assert _status("2025-06") == RegulatorExport.Status.UPLOADED


def test_the_command_runs_the_same_loop(
    worm_bucket: str, fake_clock: FakeClock, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_clock.set(MID_JULY_2025)
    call_command("export_regulator_report", "--pending")
    assert "2025-06: export 2025-06 uploaded: 0 rows" in capsys.readouterr().out

    RegulatorExport.objects.create(period="2020-01", status=RegulatorExport.Status.FAILED)
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match="failed for 2020-01") as excinfo:
        call_command("export_regulator_report", "--pending")
    assert excinfo.value.returncode == 1
    assert "2025-06: export 2025-06 was already uploaded" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("export_regulator_report", "--pending", "--period", "2025-06")
