from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from webhooks.schedule import RETRY_DELAYS, next_attempt_at, parse_retry_after

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_retry_delays_are_the_contract_schedule() -> None:
    hours = [timedelta(hours=h) for h in (2, 5, 10, 14, 20, 24)]
    expected = (timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), *hours)
    assert expected == RETRY_DELAYS
    total = sum(RETRY_DELAYS, timedelta())
    assert timedelta(days=3) < total < timedelta(days=3.5)


@pytest.mark.parametrize("failed_attempts", range(1, 10))
def test_each_retry_is_within_twenty_percent_of_its_nominal_delay(failed_attempts: int) -> None:
    rng = random.Random(1234 + failed_attempts)
    nominal = RETRY_DELAYS[failed_attempts - 1]
    ratios = []
    for _ in range(500):
        when = next_attempt_at(failed_attempts, NOW, rng=rng)
        assert when is not None
        ratio = (when - NOW) / nominal
        assert 0.8 <= ratio <= 1.2
        ratios.append(ratio)
    # Jitter is actually applied, across (nearly) the whole band.
    assert min(ratios) < 0.82
    assert max(ratios) > 1.18


def test_exhausted_after_the_last_retry_fails() -> None:
    # 1 initial attempt + 9 retries: after the 10th failure there is nothing left.
    rng = random.Random(7)
    last = next_attempt_at(9, NOW, rng=rng)
    assert last is not None
    assert timedelta(hours=19.2) <= last - NOW <= timedelta(hours=28.8)
    assert next_attempt_at(10, NOW, rng=rng) is None
    assert next_attempt_at(11, NOW, rng=rng) is None
    with pytest.raises(ValueError):
        next_attempt_at(0, NOW)


def test_retry_after_pushes_the_attempt_back() -> None:
    when = next_attempt_at(1, NOW, retry_after=timedelta(minutes=10), rng=random.Random(1))
    assert when == NOW + timedelta(minutes=10)


def test_a_short_retry_after_does_not_bring_the_attempt_forward() -> None:
    when = next_attempt_at(3, NOW, retry_after=timedelta(seconds=1), rng=random.Random(1))
    assert when is not None
    assert when - NOW >= timedelta(minutes=24)


def test_retry_after_is_capped_at_24_hours() -> None:
    asked = timedelta(days=30)
    assert next_attempt_at(1, NOW, retry_after=asked, rng=random.Random(1)) == NOW + timedelta(
        hours=24
    )
    late = next_attempt_at(9, NOW, retry_after=asked, rng=random.Random(1))
    assert late is not None
    assert late - NOW <= timedelta(hours=24) * 1.2


def test_parse_retry_after_delta_seconds() -> None:
    assert parse_retry_after("120", NOW) == timedelta(seconds=120)
    assert parse_retry_after(" 0 ", NOW) == timedelta(0)
    assert parse_retry_after("9" * 40, NOW) is not None


def test_parse_retry_after_http_date() -> None:
    header = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert header.endswith("GMT")
    assert parse_retry_after(header, NOW) == timedelta(seconds=90)
    past = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past, NOW) == timedelta(0)


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Fri, 99 Foo 2025 25:61:00 GMT"])
def test_parse_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_http_date_retry_after_is_honoured_by_the_schedule() -> None:
    header = format_datetime(NOW + timedelta(hours=3), usegmt=True)
    when = next_attempt_at(2, NOW, retry_after=parse_retry_after(header, NOW))
    assert when == NOW + timedelta(hours=3)
