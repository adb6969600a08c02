"""`record_many()`: `record()` for a batch of events, in one statement whatever its size
(PostgreSQL; three on SQLite).

The same rows as `record()` (event with its ULID, `sequence`, transaction id on PostgreSQL;
its audience; its outbox row), in the caller's transaction; used by the scheduled checks,
which fire hundreds of legs in one transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, text
from sqlalchemy.orm import Session
from ulid import ULID

from hub.db import utcnow
from hub.events.store import Event, EventAudience, OutboxEntry
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
    } for event in events]
    audiences = [sorted(set(event.audience)) for event in events]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        position_of = _append_postgresql(connection, rows, audiences, now)
    else:
        position_of = _append(connection, rows, audiences, now)
    session.info.setdefault("appended_event_types", []).extend(row["type"] for row in rows)
    return [position_of[row["id"]] for row in rows]


def _append(connection: Connection, rows: list[dict[str, Any]],
            audiences: list[list[uuid.UUID]], now: datetime) -> dict[str, int]:
    """Three statements: the events (one multi-row INSERT ... RETURNING, SQLAlchemy's
    "insertmanyvalues"), their audience, their outbox rows."""
    position_of = dict(connection.execute(
        insert(Event.__table__).returning(Event.__table__.c.id, Event.__table__.c.position),
        [{**row, "transaction_order": 0} for row in rows]).all())  # SQLite: writers take turns
    audience = [{"organization_id": organization, "event_position": position_of[row["id"]]}
                for row, organizations in zip(rows, audiences, strict=True)
                for organization in organizations]
    if audience:
        connection.execute(insert(EventAudience.__table__), audience)
    connection.execute(insert(OutboxEntry.__table__),
                       [{"event_position": position, "created_at": now}
                        for position in position_of.values()])
    return position_of


# PostgreSQL: one statement for the whole batch, the form of `store._APPEND_STATEMENT` fed by
# one JSON array of the events (one parameter: no per-element array escaping on the way).
_APPEND_MANY = text("""
WITH batch AS (
    SELECT * FROM json_to_recordset(CAST(:batch AS json)) AS b (
        n integer, id varchar, type varchar, source varchar, subject varchar,
        sequence integer, actor varchar, data json, audience json)
), appended AS (
    INSERT INTO events (transaction_order, id, type, source, subject, sequence, time, actor,
                        data)
    SELECT pg_current_xact_id()::text::bigint, id, type, source, subject, sequence,
           CAST(:time AS timestamp), actor, data
    FROM batch ORDER BY n
    RETURNING id, position
), audience AS (
    INSERT INTO event_audience (organization_id, event_position)
    SELECT CAST(organization.value AS uuid), appended.position
    FROM batch JOIN appended USING (id), json_array_elements_text(batch.audience) AS organization
), outbox AS (
    INSERT INTO outbox (event_position, created_at)
    SELECT position, CAST(:time AS timestamp) FROM appended
)
SELECT id, position FROM appended
""")


def _append_postgresql(connection: Connection, rows: list[dict[str, Any]],
                       audiences: list[list[uuid.UUID]], now: datetime) -> dict[str, int]:
    batch = [{**row, "n": n, "time": None, "audience": [str(o) for o in organizations]}
             for n, (row, organizations) in enumerate(zip(rows, audiences, strict=True))]
    return dict(connection.execute(_APPEND_MANY, {
        "batch": json.dumps(batch),
        "time": now.astimezone(UTC).replace(tzinfo=None),  # stored naive UTC (hub.db)
    }).all())
