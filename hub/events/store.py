"""The event tables and `record()`, the way an event is appended (`hub.events.bulk` appends
many at once, the same rows; nothing outside `hub.events` writes these tables).

Events are never updated or deleted (the migration adds database triggers that refuse it).  Each
event carries:
- `transaction_order` and `position`: together, the feed's order (see `hub.events.feed`);
- `id`: a ULID, the CloudEvents id and the webhook-id receivers dedupe on;
- `sequence`: one more than the previous event of the same subject.
Stored data holds references and codes only; personal data is joined in when the event is
rendered for a recipient (see `hub.events.envelope`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    bindparam,
    cast,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement
from ulid import ULID

from hub.consent import access_log
from hub.consent.access_log import PersonalDataRead
from hub.db import Base, UTCDateTime, table_of, utcnow
from hub.events.types import EventType
from hub.ops import EVENTS_APPENDED

Position = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid


class Event(Base):
    __tablename__ = "events"

    position: Mapped[int] = mapped_column(Position, primary_key=True, autoincrement=True)
    # PostgreSQL: the id of the appending transaction (0 on SQLite, whose writers take turns).
    transaction_order: Mapped[int] = mapped_column(BigInteger, default=0)
    id: Mapped[str] = mapped_column(String(26), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    sequence: Mapped[int] = mapped_column(Integer)
    time: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("subject", "sequence"),
        Index("ix_events_feed_order", "transaction_order", "position"),
    )


class EventAudience(Base):
    """Which organizations may read an event in their feed (coordinators read every event)."""

    __tablename__ = "event_audience"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id"), primary_key=True
    )
    event_position: Mapped[int] = mapped_column(
        Position, ForeignKey("events.position"), primary_key=True
    )


class OutboxEntry(Base):
    """An event waiting to be handed to the webhook dispatcher: a queue, oldest first.

    Written in the transaction of the change, so a crash between the change and its delivery
    loses nothing; the dispatcher deletes the row in the transaction that makes the event's
    delivery rows, so the queue holds only what is still to do.
    """

    __tablename__ = "outbox"

    event_position: Mapped[int] = mapped_column(
        Position, ForeignKey("events.position"), primary_key=True
    )
    created_at: Mapped[datetime]


# The tables, for Core statements (here and in `hub.events.bulk`).
EVENTS = table_of(Event)
AUDIENCE = table_of(EventAudience)
OUTBOX = table_of(OutboxEntry)


def event_source(organization_id: uuid.UUID | None) -> str:
    """An event's CloudEvents source: the organization that caused it, else the hub."""
    return f"/organizations/{organization_id}" if organization_id else "/hub"


def next_sequence(session: Session, subject: str) -> int:
    """The `sequence` of the subject's next event: one more than its last, 1 for its first."""
    last = session.scalar(select(func.max(Event.sequence)).where(Event.subject == subject))
    return (last or 0) + 1


def current_transaction_id() -> ColumnElement[int]:
    return cast(cast(func.pg_current_xact_id(), Text), BigInteger)


def oldest_running_transaction_id() -> ColumnElement[int]:
    """Every transaction with a smaller id has finished (PostgreSQL)."""
    return cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)


def record(
    session: Session,
    type: EventType,
    *,
    subject: str,
    sequence: int,
    source_organization_id: uuid.UUID | None,
    actor: str,
    data: dict[str, Any],
    audience: Iterable[uuid.UUID],
) -> int:
    """Append one event, its audience and its outbox row in the caller's transaction (not
    committed); returns the event's position.

    Nothing is locked: concurrent writers append in parallel.  On PostgreSQL the event records
    its transaction id, which lets the feed read only from transactions that have finished.
    """
    session.flush()  # pending changes first: the event describes them
    now = utcnow()
    event_type = EventType(type).value
    row = {
        "id": str(ULID()),
        "type": event_type,
        "source": event_source(source_organization_id),
        "subject": subject,
        "sequence": sequence,
        "time": now,
        "actor": actor,
        "data": data,
    }
    organizations = sorted(set(audience))
    if session.get_bind().dialect.name == "postgresql":
        # Event, audience and outbox rows in one round trip (writable CTEs), with the reads
        # of personal data noted so far in the transaction (`hub.consent.access_log`).
        parameters = {**row, "organizations": organizations, "created_at": now}
        reads = access_log.take_pending(session)
        if reads:
            participants, readers, actors = (list(column) for column in zip(*reads, strict=True))
            parameters.update(read_participants=participants, read_organizations=readers,
                              read_actors=actors, read_via=access_log.current_via(session))
        position = session.execute(
            _APPEND_WITH_READS if reads else _APPEND_STATEMENT, parameters
        ).scalar_one()
    else:
        position = session.execute(_INSERT_EVENT, row).scalar_one()
        if organizations:
            session.execute(_INSERT_AUDIENCE, [
                {"organization_id": org, "event_position": position} for org in organizations
            ])
        session.execute(_INSERT_OUTBOX, {"event_position": position, "created_at": now})
    note_appended(session, [event_type])
    return position


def note_appended(session: Session, event_types: Iterable[str]) -> None:
    """Count events appended in the session's transaction, by type, for the metrics once it
    commits (`record()` and `hub.events.bulk` call it for what they append)."""
    session.info.setdefault("appended_event_types", []).extend(event_types)


def _build_append_statement(with_reads: bool = False) -> Select[int]:
    # Built once with bind parameters, so SQLAlchemy compiles it once per process.
    columns = ("id", "type", "source", "subject", "sequence", "time", "actor", "data")
    appended = (
        insert(Event)
        .values({**{name: bindparam(name, type_=Event.__table__.c[name].type)
                    for name in columns},
                 "transaction_order": current_transaction_id()})
        .returning(Event.position)
        .cte("appended")
    )
    audience = (
        insert(EventAudience)
        .from_select(
            ["organization_id", "event_position"],
            select(func.unnest(bindparam("organizations", type_=ARRAY(Uuid))),
                   appended.c.position),
        )
        .cte("audience")
    )
    outbox = (
        insert(OutboxEntry)
        .from_select(["event_position", "created_at"],
                     select(appended.c.position, bindparam("created_at", type_=UTCDateTime())))
        .cte("outbox")
    )
    statement = select(appended.c.position).add_cte(audience).add_cte(outbox)
    if with_reads:  # parallel arrays, one element per read; unnest() zips them
        reads = (
            insert(PersonalDataRead)
            .from_select(
                ["participant_id", "organization_id", "actor", "via", "read_at"],
                select(func.unnest(bindparam("read_participants", type_=ARRAY(Uuid))),
                       func.unnest(bindparam("read_organizations", type_=ARRAY(Uuid))),
                       func.unnest(bindparam("read_actors", type_=ARRAY(String))),
                       bindparam("read_via", type_=String()),
                       bindparam("created_at", type_=UTCDateTime())),
            )
            .cte("reads")
        )
        statement = statement.add_cte(reads)
    return statement


_APPEND_STATEMENT = _build_append_statement()
_APPEND_WITH_READS = _build_append_statement(with_reads=True)

# SQLite's three statements, on the tables (Core: no ORM bulk-insert machinery per call), built
# once like the ones above: building a statement costs about as much Python as running it.
_INSERT_EVENT = (
    insert(EVENTS)
    .values({**{name: bindparam(name, type_=EVENTS.c[name].type)
                for name in ("id", "type", "source", "subject", "sequence", "time", "actor",
                             "data")},
             "transaction_order": 0})
    .returning(EVENTS.c.position)
)
_INSERT_AUDIENCE = insert(AUDIENCE)
_INSERT_OUTBOX = insert(OUTBOX)


@event.listens_for(Session, "after_commit")
def _count_committed_events(session: Session) -> None:
    # Counted after commit so the metric never includes events that were rolled back.
    for event_type in session.info.pop("appended_event_types", []):
        EVENTS_APPENDED.labels(type=event_type).inc()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_events(session: Session) -> None:
    session.info.pop("appended_event_types", None)
