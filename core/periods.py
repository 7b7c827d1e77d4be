"""The one parser for reporting periods: a calendar month written YYYY-MM.

A period is a calendar month in the regulator's time zone (settings.TIME_ZONE,
Asia/Kabul): it starts at local midnight on the 1st and ends, exclusively, at local
midnight on the 1st of the next month. The monthly regulator export, its verification,
the REST lookup "id or period" and the commands all read periods here, so the rule
(years 2000–2099, months 01–12, nothing else) and its error message exist once.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from core import clock
from core.errors import ValidationError

_PERIOD = re.compile(r"(?P<year>20[0-9]{2})-(?P<month>0[1-9]|1[0-2])")
RULE = "must be a month as YYYY-MM (e.g. 2026-10)"


def _zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


@dataclass(frozen=True)
class Period:
    year: int
    month: int

    @property
    def name(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        """Local midnight on the 1st (aware, in TIME_ZONE)."""
        return datetime(self.year, self.month, 1, tzinfo=_zone())

    @property
    def end(self) -> datetime:
        """Exclusive: the first instant of the next month, local time."""
        return datetime(self.year + (self.month == 12), self.month % 12 + 1, 1, tzinfo=_zone())

    def __str__(self) -> str:
        return self.name

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def has_ended(self, now: datetime | None = None) -> bool:
        return self.end <= (now or clock.now())

    def require_ended(self, now: datetime | None = None, *, field: str = "period") -> Period:
        """This period, if it is over by `now` (default: the clock); else ValidationError."""
        if not self.has_ended(now):
            raise ValidationError(
                f"{field}: {self.name} has not ended yet (it ends {self.end.isoformat()}); export a finished month",
                field=field,
            )
        return self


def parse_period(value: str | None, *, field: str = "period") -> Period:
    """`value` as a Period; ValidationError naming `field` and the rule when it is not one."""
    match = _PERIOD.fullmatch(value or "")
    if match is None:
        raise ValidationError(f"{field}: {value!r} {RULE}", field=field)
    return Period(int(match["year"]), int(match["month"]))


def period_of(moment: datetime | None = None) -> Period:
    """The month (in TIME_ZONE) that contains `moment` (default: the clock's now)."""
    local = (moment or clock.now()).astimezone(_zone())
    return Period(local.year, local.month)


def previous_period(now: datetime | None = None) -> Period:
    """Last month, as seen in TIME_ZONE at `now` (default: the clock's now)."""
    return period_of(now).previous()
