"""An organization's event feed: the events it may see, oldest first, from a cursor.

The cursor is the global position of the last event read.  Positions become visible in order
(see `store.record`), so reading `position > cursor` skips nothing and repeats nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.callers import Caller
from hub.events.store import Event, EventAudience


def read_feed(session: Session, caller: Caller, *, after: int, limit: int) -> list[Event]:
    """Up to `limit` events after position `after` that `caller` may see (coordinators: all)."""
    query = select(Event).where(Event.position > after).order_by(Event.position).limit(limit)
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
