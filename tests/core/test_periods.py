"""core.periods: the one parser for YYYY-MM reporting periods (calendar months in Asia/Kabul)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import errors
from core.clock import FakeClock
from core.periods import Period, parse_period, period_of, previous_period


@pytest.mark.parametrize("value", ["2026-13", "26-01", "2026-1", "", "2026-01-01", "1999-12", "2026-00", " 2026-01"])
def test_malformed_period_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(errors.ValidationError, match="period: .* must be a month as YYYY-MM") as excinfo:
        parse_period(value)
    assert excinfo.value.field == "period"


def test_the_refusal_names_the_field_the_caller_reads() -> None:
    with pytest.raises(errors.ValidationError, match="^id: 'nope' must be a month as YYYY-MM") as excinfo:
        parse_period("nope", field="id")
    assert excinfo.value.field == "id"


def test_none_is_refused_like_an_empty_value() -> None:
    with pytest.raises(errors.ValidationError, match="must be a month"):
        parse_period(None)


def test_unfinished_period_is_refused() -> None:
    with pytest.raises(errors.ValidationError, match="period: 2099-01 has not ended yet"):
        parse_period("2099-01").require_ended()


def test_a_period_is_over_from_the_first_instant_of_the_next_month(fake_clock: FakeClock) -> None:
    month = parse_period("2025-12")
    fake_clock.set(month.end - timedelta(microseconds=1))
    assert not month.has_ended()
    with pytest.raises(errors.ValidationError, match="has not ended yet") as excinfo:
        month.require_ended(field="when")
    assert excinfo.value.field == "when"
    fake_clock.set(month.end)
    assert month.has_ended() and month.require_ended() is month


def test_period_bounds_are_kabul_calendar_months() -> None:
    p = parse_period("2025-12")
    assert (p.year, p.month, p.name, str(p)) == (2025, 12, "2025-12", "2025-12")
    assert p.start.isoformat() == "2025-12-01T00:00:00+04:30" and p.end.isoformat() == "2026-01-01T00:00:00+04:30"
    assert previous_period(datetime(2026, 1, 1, 0, 30, tzinfo=UTC)).name == "2025-12"
    assert previous_period(datetime(2025, 12, 31, 20, 0, tzinfo=UTC)).name == "2025-12"  # 00:30 on 1 Jan in Kabul
    assert previous_period(datetime(2025, 12, 31, 19, 29, tzinfo=UTC)).name == "2025-11"  # 23:59 on 31 Dec in Kabul


def test_previous_crosses_the_year_and_months_tile_without_gaps() -> None:
    assert parse_period("2026-01").previous() == Period(2025, 12)
    assert parse_period("2026-03").previous() == Period(2026, 2)
    month = parse_period("2024-01")
    for _ in range(24):
        nxt = period_of(month.end)
        assert nxt.previous() == month and nxt.start == month.end
        month = nxt
    assert month.name == "2026-01"


def test_last_month_follows_the_installed_clock(fake_clock: FakeClock) -> None:
    fake_clock.set(datetime(2026, 3, 15, 12, 0, tzinfo=UTC))
    assert previous_period() == Period(2026, 2) and period_of() == Period(2026, 3)
    fake_clock.set(datetime(2026, 3, 31, 19, 30, tzinfo=UTC))  # 00:00 on 1 April in Kabul
    assert previous_period().name == "2026-03"


def test_periods_are_values() -> None:
    assert parse_period("2026-02") == Period(2026, 2)
    assert len({parse_period("2026-02"), Period(2026, 2)}) == 1
    with pytest.raises(AttributeError):
        parse_period("2026-02").month = 3  # type: ignore[misc]
