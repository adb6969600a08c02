"""The transactional outbox: turning a message into one pending delivery per endpoint.

The application calls ``enqueue`` (or ``enqueue_many``) in the transaction that made the
message, so a message is queued if and only if it was committed: at-least-once from there on.

Which endpoints get a delivery: those of the message's owners (``None``: every owner) whose
event type patterns match, *whatever their status*. A paused or disabled endpoint still gets
its deliveries, parked (see ``webhooks.endpoints``): nothing is lost while it is off, and
everything flows, in order, once it is active again.

It costs one query for the endpoints and one ``INSERT ... ON CONFLICT DO NOTHING`` (per 500
rows) for a whole batch of messages, whatever the number of endpoints; the conflict target,
the unique (endpoint_id, message_id), makes enqueueing the same message twice a no-op.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from webhooks.claiming import claimable
from webhooks.endpoints import PARKED_UNTIL, matches
from webhooks.models import Delivery, DeliveryState, Endpoint, EndpointStatus

__all__ = ["Message", "QueueStats", "enqueue", "enqueue_many", "queue_stats"]

_ROWS_PER_STATEMENT = 500  # 12 parameters a row: well under SQLite's and PostgreSQL's limits
_MESSAGE_ID_RE = re.compile(r"\S{1,64}")


@dataclass(frozen=True)
class Message:
    """A message to deliver: what the engine needs of it (the body is rendered at send time)."""

    message_id: str  # the webhook-id receivers deduplicate on
    event_type: str
    ordering_key: str
    sequence: int
    owner_ids: frozenset[uuid.UUID] | None = None  # None: every owner's endpoints

    def __post_init__(self) -> None:
        if not _MESSAGE_ID_RE.fullmatch(self.message_id):
            raise ValueError("message_id must be 1 to 64 characters without whitespace")
        if not 1 <= len(self.event_type) <= 64:
            raise ValueError("event_type must be 1 to 64 characters")
        if not 1 <= len(self.ordering_key) <= 200:
            raise ValueError("ordering_key must be 1 to 200 characters")
        if self.owner_ids is not None and not isinstance(self.owner_ids, frozenset):
            object.__setattr__(self, "owner_ids", frozenset(self.owner_ids))


@dataclass(frozen=True)
class QueueStats:
    pending: int  # every pending delivery, parked or scheduled for a later retry included
    # How long the most overdue delivery that could be sent right now has waited (None: none).
    oldest_pending_age_seconds: float | None


def enqueue(
    session: Session,
    *,
    message_id: str,
    event_type: str,
    ordering_key: str,
    sequence: int,
    owner_ids: Iterable[uuid.UUID] | None,
    now: datetime,
) -> int:
    """Queue one message for every matching endpoint; returns how many deliveries were new."""
    owners = None if owner_ids is None else frozenset(owner_ids)
    return enqueue_many(
        session, [Message(message_id, event_type, ordering_key, sequence, owners)], now
    )


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    # Core, on the Table: the class is mapped by `__tablename__`, so `__table__` is a Table
    # (the declarative base types it as any FromClause).
    table = cast(Table, Delivery.__table__)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"enqueue supports PostgreSQL and SQLite, not {dialect}")


def enqueue_many(session: Session, messages: Sequence[Message], now: datetime) -> int:
    """Queue a batch of messages; returns how many deliveries were new."""
    if not messages:
        return 0
    query = select(Endpoint.id, Endpoint.owner_id, Endpoint.event_types, Endpoint.status)
    if all(m.owner_ids is not None for m in messages):
        owners = set().union(*(cast(frozenset[uuid.UUID], m.owner_ids) for m in messages))
        if not owners:
            return 0
        query = query.where(Endpoint.owner_id.in_(owners))
    endpoints = session.execute(query).all()

    rows: list[dict[str, Any]] = []
    for message in messages:
        for endpoint_id, owner_id, patterns, status in endpoints:
            if message.owner_ids is not None and owner_id not in message.owner_ids:
                continue
            if not matches(patterns, message.event_type):
                continue
            active = status == EndpointStatus.ACTIVE.value
            rows.append(
                {
                    "endpoint_id": endpoint_id,
                    "message_id": message.message_id,
                    "event_type": message.event_type,
                    "ordering_key": message.ordering_key,
                    "sequence": message.sequence,
                    "state": DeliveryState.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now if active else PARKED_UNTIL,
                    "created_at": now,
                }
            )
    created = 0
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        statement = (
            _insert(session)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=["endpoint_id", "message_id"])
            .returning(Delivery.__table__.c.id)  # rowcount is not reliable here on psycopg
        )
        created += len(session.execute(statement).all())
    return created


def queue_stats(session: Session, now: datetime) -> QueueStats:
    """The backlog, and how far behind the dispatchers are.

    The age is measured from when the delivery became due, over deliveries that could be
    claimed right now: a retry scheduled for tomorrow, a parked delivery or one waiting for an
    earlier message of its key are not "late", while a value that keeps growing means the
    dispatchers are down or cannot keep up.
    """
    pending = session.scalar(
        select(func.count()).select_from(Delivery).where(
            Delivery.state == DeliveryState.PENDING.value
        )
    )
    oldest_due = session.scalar(
        select(Delivery.next_attempt_at)
        .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
        .where(claimable(now))
        .order_by(Delivery.next_attempt_at)
        .limit(1)
    )
    age = None if oldest_due is None else max((now - oldest_due).total_seconds(), 0.0)
    return QueueStats(pending=int(pending or 0), oldest_pending_age_seconds=age)
