"""Appending many events at once: the same rows as `record()` (the event with its ULID and
`sequence`, the transaction id on PostgreSQL; its audience; its outbox row), in the caller's
transaction, for the scheduled checks, which fire hundreds of legs in one transaction.

- `record_many()`: a batch of events built in Python, in one statement whatever its size
  (PostgreSQL; three on SQLite);
- `RowEvents` and `appending()`: on PostgreSQL, one event for each row of a caller's own
  statement, appended inside that statement (writable CTEs), so that a check can move its
  legs on and announce them in one round trip without writing the event tables itself.
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
from hub.events.store import AUDIENCE, EVENTS, OUTBOX, event_source, note_appended
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
    ids = new_ids(len(events))
    rows: list[dict[str, Any]] = [{
        "id": event_id,
        "type": EventType(event.type).value,
        "source": event_source(event.source_organization_id),
        "subject": event.subject,
        "sequence": event.sequence,
        "time": now,
        "actor": event.actor,
        "data": event.data,
    } for event_id, event in zip(ids, events, strict=True)]
    audiences = [sorted(set(event.audience)) for event in events]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        position_of = _append_postgresql(connection, rows, audiences, now)
    else:
        position_of = _append(connection, rows, audiences, now)
    note_appended(session, (row["type"] for row in rows))
    return [position_of[event_id] for event_id in ids]


def new_ids(count: int) -> list[str]:
    """`count` new event ids (ULIDs), for the events a statement appends (`RowEvents.id`)."""
    return [str(ULID()) for _ in range(count)]


def _append(connection: Connection, rows: list[dict[str, Any]],
            audiences: list[list[uuid.UUID]], now: datetime) -> dict[str, int]:
    """Three statements: the events (one multi-row INSERT ... RETURNING, SQLAlchemy's
    "insertmanyvalues"), their audience, their outbox rows."""
    position_of: dict[str, int] = {
        row.id: row.position for row in connection.execute(
            insert(EVENTS).returning(EVENTS.c.id, EVENTS.c.position),
            [{**row, "transaction_order": 0} for row in rows])}  # SQLite: writers take turns
    audience = [{"organization_id": organization, "event_position": position_of[row["id"]]}
                for row, organizations in zip(rows, audiences, strict=True)
                for organization in organizations]
    if audience:
        connection.execute(insert(AUDIENCE), audience)
    connection.execute(insert(OUTBOX), [{"event_position": position, "created_at": now}
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
    return {row.id: row.position for row in connection.execute(_APPEND_MANY, {
        "batch": json.dumps(batch),
        "time": now.astimezone(UTC).replace(tzinfo=None),  # stored naive UTC (hub.db)
    })}


# -- events of a caller's rows, in the caller's statement (PostgreSQL) ----------------------------


@dataclass(frozen=True)
class RowEvents:
    """One event for each row of `rows`, a CTE of the caller's statement (PostgreSQL): what
    `record()` would append for it, each per-row value an SQL expression over that CTE's
    columns, qualified by its name (`moved.version`, not `version`).

    `id` must give each row a new event id (from `new_ids`, passed in by the caller), `time`
    a naive UTC timestamp (`CAST(:now AS timestamp)`), `data` a json value; `audience` lists
    the organizations that read the event (one expression each, duplicates counted once);
    `order` is the order the events are appended in."""

    type: EventType
    rows: str
    id: str
    subject: str
    sequence: str
    data: str
    audience: tuple[str, ...]
    order: str
    time: str
    actor: str = "scheduler"
    source_organization_id: uuid.UUID | None = None


def _literal(value: str) -> str:
    """An SQL string literal (standard_conforming_strings, PostgreSQL's default)."""
    return "'" + value.replace("'", "''") + "'"


def appending(events: RowEvents) -> str:
    """The writable CTEs appending `events`, to put in the caller's WITH after `events.rows`:
    `appended (id, position)`, which the caller may join on its rows (`appended.id =`
    the row's event id), then `appended_audience` and `appended_outbox`, which it must not
    name itself.  The caller's statement, made once at import, stays one round trip; after
    running it, the caller reports the events it appended with `appended_events`."""
    audience = ", ".join(f"({organization})" for organization in events.audience)
    return f"""appended AS (
    INSERT INTO events (transaction_order, id, type, source, subject, sequence, time, actor,
                        data)
    SELECT pg_current_xact_id()::text::bigint, {events.id},
           {_literal(EventType(events.type).value)},
           {_literal(event_source(events.source_organization_id))}, {events.subject},
           {events.sequence}, {events.time}, {_literal(events.actor)}, {events.data}
    FROM {events.rows} ORDER BY {events.order}
    RETURNING id, position
), appended_audience AS (
    INSERT INTO event_audience (organization_id, event_position)
    SELECT DISTINCT audience.organization, appended.position
    FROM {events.rows} JOIN appended ON appended.id = {events.id},
         LATERAL (VALUES {audience}) AS audience (organization)
), appended_outbox AS (
    INSERT INTO outbox (event_position, created_at)
    SELECT position, {events.time} FROM appended
)"""


def appended_events(session: Session, events: RowEvents, count: int) -> None:
    """What a statement built with `appending(events)` appended: `count` events (for the
    metrics, as `record()` counts its own)."""
    note_appended(session, [EventType(events.type).value] * count)
