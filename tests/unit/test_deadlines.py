"""Business-day deadlines with Québec public holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hub.followups.deadlines import add_business_days, deadline, is_business_day


def test_weekends_and_quebec_holidays_are_not_business_days() -> None:
    assert not is_business_day(date(2026, 11, 21))  # Saturday
    assert not is_business_day(date(2026, 6, 24))  # Fête nationale du Québec
    assert not is_business_day(date(2026, 7, 1))  # Canada Day
    assert not is_business_day(date(2026, 12, 25))
    assert is_business_day(date(2026, 11, 23))  # a Monday


def test_friday_plus_one_business_day_is_monday_same_local_time() -> None:
    friday_10h_montreal = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 10:00 EST
    assert add_business_days(friday_10h_montreal, 1) == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_counting_skips_the_fete_nationale() -> None:
    # Tuesday 23 June 2026 + 1 business day: the 24th is a holiday, so Thursday the 25th.
    start = datetime(2026, 6, 23, 14, 0, tzinfo=UTC)
    assert add_business_days(start, 1).date() == date(2026, 6, 25)


def test_local_day_decides_not_utc() -> None:
    # Friday 20:30 in Montréal is already Saturday in UTC; one business day later is Monday.
    friday_evening = datetime(2026, 11, 21, 1, 30, tzinfo=UTC)
    assert add_business_days(friday_evening, 1) == datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


def test_urgent_legs_get_tighter_deadlines() -> None:
    monday = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert deadline("acknowledge", "urgent", monday) < deadline("acknowledge", "routine", monday)
    assert deadline("acknowledge", "routine", monday).date() == date(2026, 11, 26)
    assert deadline("start", "routine", monday).date() == date(2026, 12, 7)
