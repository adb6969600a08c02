"""An urgent leg's deadlines and the date it is needed by (docs/design.md §12), with Québec's
holidays: pure functions, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hub.followups.deadlines import bounded, latest_before


def test_the_bound_is_the_close_of_the_business_day_before_skipping_a_holiday() -> None:
    # Thursday 24 June 2027 is the Fête nationale: a leg needed on Friday the 25th must be
    # ready by Wednesday the 23rd, 17:00 in Montréal (EDT, UTC-4).
    assert latest_before(date(2027, 6, 25)) == datetime(2027, 6, 23, 21, 0, tzinfo=UTC)
    # Labour Day, Monday 6 September 2027, then the weekend: Friday the 3rd.
    assert latest_before(date(2027, 9, 7)) == datetime(2027, 9, 3, 21, 0, tzinfo=UTC)
    # In winter Montréal is UTC-5; a Monday's bound is the Friday before.
    assert latest_before(date(2026, 12, 14)) == datetime(2026, 12, 11, 22, 0, tzinfo=UTC)


def test_only_urgent_legs_are_bounded_and_only_to_earlier() -> None:
    policy = datetime(2027, 6, 28, 14, 0, tzinfo=UTC)
    needed = date(2027, 6, 25)
    assert bounded(policy, "urgent", needed) == datetime(2027, 6, 23, 21, 0, tzinfo=UTC)
    assert bounded(policy, "routine", needed) == policy
    assert bounded(policy, "urgent", None) == policy
    early = datetime(2027, 6, 22, 14, 0, tzinfo=UTC)
    assert bounded(early, "urgent", needed) == early  # the policy's is earlier: kept


def test_the_bound_follows_the_receivers_time_zone() -> None:
    # Îles-de-la-Madeleine count in Atlantic time (UTC-3 in summer).
    assert latest_before(date(2027, 6, 25), "America/Halifax") == datetime(
        2027, 6, 23, 20, 0, tzinfo=UTC)
