"""An organization's event feed: the events it may see, in a stable order, from a cursor.

The difficulty is that events are appended by concurrent transactions that commit in any
order: reading "position > last seen" could skip an event whose transaction committed late
with a smaller position.  So the feed is ordered by (transaction id, position) and, on
PostgreSQL, reads only events of transactions older than the oldest one still running: those
have all finished, and no event can appear among them later.  Nothing is skipped, nothing
repeated, and writers never wait for each other.  SQLite's writers take turns, so there the
transaction part is always 0 and positions alone are in commit order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.events.store import Event, EventAudience, oldest_running_transaction_id

_CURSOR = re.compile(r"^(\d{1,18})(?:\.(\d{1,18}))?$")


@dataclass(frozen=True)
class FeedCursor:
    transaction_order: int = 0
    position: int = 0

    def __str__(self) -> str:
        return f"{self.transaction_order}.{self.position}"

    @classmethod
    def parse(cls, text: str) -> FeedCursor:
        """Read a cursor given by `str()`; "0" is the beginning. ValueError if malformed."""
        match = _CURSOR.match(text)
        if match is None:
            raise ValueError(f"not a feed cursor: {text!r}")
        if match.group(2) is None:
            return cls(0, int(match.group(1)))
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, event: Event) -> FeedCursor:
        return cls(event.transaction_order, event.position)


def read_feed(session: Session, caller: Caller, *, after: FeedCursor, limit: int) -> list[Event]:
    """Up to `limit` events after `after` that `caller` may see (coordinators: all)."""
    order = tuple_(Event.transaction_order, Event.position)
    query = (
        select(Event)
        .where(order > tuple_(after.transaction_order, after.position))
        .order_by(Event.transaction_order, Event.position)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.where(Event.transaction_order < oldest_running_transaction_id())
    if not caller.is_coordinator:
        query = query.join(EventAudience, EventAudience.event_position == Event.position).where(
            EventAudience.organization_id == caller.organization_id
        )
    return list(session.scalars(query))


def subject_history(session: Session, subject: str) -> list[Event]:
    """Every event of one subject (a leg, a consent), in order."""
    return list(
        session.scalars(select(Event).where(Event.subject == subject).order_by(Event.sequence))
    )
