"""Deadlines of a leg in business days, with Québec public holidays (docs/design.md §6).

Pure functions: the hub's default policy (how many business days for which check and
priority) and the calendar.  The policy in force for a leg (per receiving organization and
pathway) is data, read by `hub.followups.policies`, which hands the number of business days to
`deadline`.  The scheduled checks that act on missed deadlines build on this.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, available_timezones

from hub.referrals.lifecycle import Pathway, Priority

if TYPE_CHECKING:
    import holidays

DEFAULT_TIME_ZONE = "America/Toronto"


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone name this system knows (e.g. America/Toronto)."""
    return name in _time_zones()


def time_zone_names() -> list[str]:
    """Every name `is_time_zone` accepts, sorted (the API's document lists them)."""
    return sorted(_time_zones())


# Business days allowed for each check, by priority: the hub's defaults of docs/design.md §6.
DEFAULT_POLICY: dict[str, dict[str, int]] = {
    "acknowledge": {"routine": 3, "urgent": 1},
    "decide": {"routine": 5, "urgent": 2},
    "start": {"routine": 10, "urgent": 3},
}
CHECKS = tuple(DEFAULT_POLICY)  # acknowledge, decide, start
PRIORITIES = tuple(p.value for p in Priority)
PATHWAYS = tuple(p.value for p in Pathway)
MAX_BUSINESS_DAYS = 60


@lru_cache(maxsize=64)
def _quebec_holidays(year: int) -> holidays.HolidayBase:
    import holidays  # a quarter of a second: only when a deadline is counted, not for `hub`

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

    `business_days` is the allowance of the policy in force
    (`hub.followups.policies.business_days`); without it, the hub's default of docs/design.md §6.
    Days are counted in `time_zone`, the receiving organization's (Québec's by default)."""
    if business_days is None:
        business_days = DEFAULT_POLICY[check][priority]
    return add_business_days(start, times * business_days, time_zone)


# -- a leg needed by a date (docs/design.md §12) ---------------------------------------------

# An urgent leg's work must be done by the close of the last business day before the date it
# is needed by (the first day of the job, the departure): that day is for the move itself.
CLOSE_OF_BUSINESS = time(17, 0)


def latest_before(needed_by: date, time_zone: str = DEFAULT_TIME_ZONE) -> datetime:
    """The close of business (17:00, in `time_zone`) of the last business day before
    `needed_by`, in UTC."""
    day = needed_by - timedelta(days=1)
    while not is_business_day(day):
        day -= timedelta(days=1)
    return datetime.combine(day, CLOSE_OF_BUSINESS, ZoneInfo(time_zone)).astimezone(UTC)


def bounded(due: datetime, priority: str, needed_by: date | None,
            time_zone: str = DEFAULT_TIME_ZONE) -> datetime:
    """`due`, or earlier for an urgent leg needed by a date: never after `latest_before` it.

    A routine leg keeps the policy's deadlines whatever its date (§12 bounds urgent ones)."""
    if priority != "urgent" or needed_by is None:
        return due
    return min(due, latest_before(needed_by, time_zone))


# -- when a leg's next scheduled check is due ------------------------------------------------

# The deadline that applies in each status: (check, the leg's column holding it).
DEADLINE_OF_STATUS: dict[str, tuple[str, str]] = {
    "sent": ("acknowledge", "acknowledge_by"),
    "acknowledged": ("decide", "decide_by"),
    "accepted": ("start", "start_by"),
}
# Follow-ups to the sender after completion, in order (`hub.followups.leg_checks.followups_due`).
FOLLOW_UP_AFTER: dict[str, timedelta] = {"followup_30": timedelta(days=30),
                                         "followup_180": timedelta(days=180)}
# The participant is asked this many business days after acceptance (`hub.followups.checkins`).
CHECKIN_AFTER_BUSINESS_DAYS = 3
CHECKIN_STATUSES = ("accepted", "in_progress")


def arm_checks(leg: Any) -> None:
    """Set the due-at columns of a leg that has just entered its status (sent, or moved on).

    - `deadline_due_at`: the deadline of the new status (none after `accepted`);
    - `followup_due_at`: 30 days after completion (the check moves it to 180 days, then clears
      it);
    - `checkin_due_at`: 3 business days after acceptance, kept while the leg is started.

    Each check clears or moves its column in the transaction that fires it, so the partial
    indexes on these columns hold only legs whose check is still to come, whatever the size of
    the history.  A column left set on a leg that moved on without this call is cleared by its
    check, which looks at the leg's status before firing."""
    deadline = DEADLINE_OF_STATUS.get(leg.status)
    leg.deadline_due_at = getattr(leg, deadline[1]) if deadline else None
    leg.followup_due_at = (leg.closed_at + FOLLOW_UP_AFTER["followup_30"]
                           if leg.status == "completed" and leg.closed_at else None)
    if leg.status == "accepted" and leg.accepted_at is not None:
        leg.checkin_due_at = add_business_days(leg.accepted_at, CHECKIN_AFTER_BUSINESS_DAYS)
    elif leg.status not in CHECKIN_STATUSES:
        leg.checkin_due_at = None
