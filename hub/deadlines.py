"""Deadlines of a leg in business days, with Québec public holidays (DESIGN §6).

Pure functions: the hub's default policy (how many business days for which check and
priority) and the calendar.  The policy in force for a leg (per receiving organization and
pathway) is data, read by `hub.policies`, which hands the number of business days to
`deadline`.  The scheduled checks that act on missed deadlines build on this.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

DEFAULT_TIME_ZONE = "America/Toronto"

# Business days allowed for each check, by priority: the hub's defaults of DESIGN §6.
DEFAULT_POLICY: dict[str, dict[str, int]] = {
    "acknowledge": {"routine": 3, "urgent": 1},
    "decide": {"routine": 5, "urgent": 2},
    "start": {"routine": 10, "urgent": 3},
}


@lru_cache(maxsize=64)
def _quebec_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("CA", subdiv="QC", years=year)


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _quebec_holidays(day.year)


def add_business_days(start: datetime, days: int, time_zone: str = DEFAULT_TIME_ZONE) -> datetime:
    """`start` moved forward by `days` business days, at the same local time of day.

    Counting happens in `time_zone` (Québec's, America/Toronto, by default), so a leg sent on
    Friday evening in Québec is due on a Québec business day, whatever UTC says.
    """
    local = start.astimezone(ZoneInfo(time_zone))
    day = local.date()
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_business_day(day):
            remaining -= 1
    due = datetime.combine(day, local.timetz().replace(tzinfo=None), ZoneInfo(time_zone))
    return due.astimezone(start.tzinfo)


def deadline(check: str, priority: str, start: datetime, times: int = 1, *,
             business_days: int | None = None, time_zone: str = DEFAULT_TIME_ZONE) -> datetime:
    """When `check` (acknowledge, decide, start) is due for a leg of `priority` from `start`;
    `times=2` gives twice the allowance (an unacknowledged leg expires then).

    `business_days` is the allowance of the policy in force (`hub.policies.business_days`);
    without it, the hub's default of DESIGN §6.  Days are counted in `time_zone`, the
    receiving organization's (Québec's by default)."""
    if business_days is None:
        business_days = DEFAULT_POLICY[check][priority]
    return add_business_days(start, times * business_days, time_zone)
