"""`record_many()`: `record()` for a batch of events, in three statements whatever its size.

The same rows as `record()` (event with its ULID, `sequence`, transaction id on PostgreSQL;
its audience; its outbox row), in the caller's transaction; used by the scheduled checks,
which fire hundreds of legs in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from ulid import ULID

from hub.db import utcnow
from hub.events.store import Event, EventAudience, OutboxEntry, current_transaction_id
from hub.events.types import EventType


@dataclass(frozen=True)
class NewEvent:
    """The arguments of one `record()` call."""

    type: EventType
    subject: str
    sequence: int
    data: dict[str, Any]
    audience: Iterable[uuid.UUID]
    source_organization_id: uuid.UUID | None = None
    actor: str = "scheduler"


def record_many(session: Session, events: Sequence[NewEvent]) -> list[int]:
    """Append every event, its audience and its outbox row (not committed); returns their
    positions, in the order given."""
    if not events:
        return []
    session.flush()  # pending changes first: the events describe them
    now = utcnow()
    connection = session.connection()
    transaction_order = 0  # SQLite, whose writers take turns
    if connection.dialect.name == "postgresql":
        transaction_order = connection.scalar(select(current_transaction_id()))
    rows = [{
        "id": str(ULID()),
        "type": EventType(event.type).value,
        "source": f"/organizations/{event.source_organization_id}"
        if event.source_organization_id else "/hub",
        "subject": event.subject,
        "sequence": event.sequence,
        "time": now,
        "actor": event.actor,
        "data": event.data,
        "transaction_order": transaction_order,
    } for event in events]
    # One multi-row INSERT ... RETURNING (SQLAlchemy's "insertmanyvalues"); matched by id.
    position_of = dict(connection.execute(
        insert(Event.__table__).returning(Event.__table__.c.id, Event.__table__.c.position),
        rows).all())
    positions = [position_of[row["id"]] for row in rows]
    audience = [{"organization_id": organization, "event_position": position}
                for event, position in zip(events, positions, strict=True)
                for organization in sorted(set(event.audience))]
    if audience:
        connection.execute(insert(EventAudience.__table__), audience)
    connection.execute(insert(OutboxEntry.__table__),
                       [{"event_position": position, "created_at": now}
                        for position in positions])
    session.info.setdefault("appended_event_types", []).extend(row["type"] for row in rows)
    return positions
