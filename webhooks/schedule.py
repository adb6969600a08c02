"""When to retry a failed delivery, and when to give up.

Nine retries spread over about three days, so a receiver that is down for a deploy, a night or
a long weekend still gets its events, with ±20 % jitter so that deliveries which failed together
(one receiver outage) do not all come back at the same second. A receiver's ``Retry-After`` is
honoured, but capped, so that no receiver can park a delivery indefinitely.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

__all__ = ["JITTER", "MAX_RETRY_AFTER", "RETRY_DELAYS", "next_attempt_at", "parse_retry_after"]

RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
JITTER = 0.2
MAX_RETRY_AFTER = timedelta(hours=24)
# Far beyond the cap, small enough for timedelta: absurd delta-seconds still parse.
_MAX_PARSED_SECONDS = 10**9

_DELTA_SECONDS_RE = re.compile(r"[0-9]+")


def next_attempt_at(
    failed_attempts: int,
    now: datetime,
    *,
    retry_after: timedelta | None = None,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to make the next attempt, or None when retries are exhausted (dead-letter).

    ``failed_attempts`` counts the attempts made so far, all failed: 1 after the initial attempt
    failed (next: the first retry, ~5 s later), ..., 9 after the eighth retry failed (next: the
    last retry, ~24 h later), 10 after the last retry failed (None). ``retry_after`` (from the
    receiver) pushes the attempt back to at least ``now + retry_after``, capped at 24 h.
    """
    if failed_attempts < 1:
        raise ValueError("failed_attempts counts failures so far and must be at least 1")
    if failed_attempts > len(RETRY_DELAYS):
        return None
    low, high = 1 - JITTER, 1 + JITTER
    draw = rng.uniform(low, high) if rng is not None else random.uniform(low, high)
    delay = RETRY_DELAYS[failed_attempts - 1] * draw
    if retry_after is not None:
        delay = max(delay, min(max(retry_after, timedelta(0)), MAX_RETRY_AFTER))
    return now + delay


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (delta-seconds or HTTP-date) as a delay from ``now``.

    None when absent or unparseable; a date already past gives a zero delay. The result is not
    capped here (``next_attempt_at`` caps it), so callers can log what the receiver asked for.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS_RE.fullmatch(text):
        return timedelta(seconds=min(int(text), _MAX_PARSED_SECONDS))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # older Pythons returned None on garbage
        return None
    if when.tzinfo is None:  # "-0000": RFC 5322 says UTC with no zone information
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware to compare with an HTTP-date")
    return max(when - now, timedelta(0))
