"""How the hub writes moments in JSON: ISO 8601 in UTC with a trailing Z, everywhere."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime | None, timespec: str = "auto") -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
