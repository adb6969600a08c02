"""The event log has one writer, `hub.events`, whichever way an event comes in: a missed
deadline appended by the scheduled check's bulk path (PostgreSQL: the CTEs of
`hub.events.bulk.appending` inside the check's one firing statement; SQLite: `record_many`) is,
row for row, what `record()` appends for the same miss — its event, its audience, its outbox
row — ids, positions and transaction order aside."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db import iso_utc
from hub.events import bulk, store
from hub.events.store import Event, EventAudience, OutboxEntry, record
from hub.events.types import EventType
from hub.followups import leg_checks
from hub.followups.leg_checks import Due
from hub.referrals.legs import Referral, snapshot
from tests.helpers import Network
from tests.integration.test_followups import moment

# What is compared of an event: everything but its id, position and transaction order.
COMPARED = ("type", "source", "subject", "sequence", "time", "actor", "data")


def written(session: Session, position: int) -> dict[str, Any]:
    """The rows an append wrote for the event at `position`, as comparable values."""
    event = session.scalars(select(Event).where(Event.position == position)).one()
    return {
        "event": {name: getattr(event, name) for name in COMPARED},
        "audience": sorted(session.scalars(select(EventAudience.organization_id).where(
            EventAudience.event_position == position))),
        "outbox": list(session.scalars(select(OutboxEntry.created_at).where(
            OutboxEntry.event_position == position))),
    }


def the_bulk_path(session: Session) -> Callable[[Session, datetime, Sequence[Due]], Any]:
    """How `deadlines_missed` fires a batch on this backend."""
    if session.get_bind().dialect.name == "postgresql":
        return leg_checks.fire_missed_in_sql
    return leg_checks._fire_missed


def test_a_missed_deadline_appended_in_bulk_is_what_record_appends(
        app: Flask, network: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    sender = network.partner()
    receivers = [network.partner(), network.partner()]  # two legs: each keeps its audience
    sent = [sender.refer(receiver) for receiver in receivers]
    legs = [uuid.UUID(leg["id"]) for leg in sent]
    now = max(moment(leg["deadlines"]["acknowledge_by"]) for leg in sent) + timedelta(minutes=1)
    # One clock for both: `record()` stamps its rows with the time of the append, the bulk
    # path with the tick's moment (the same moment, when the scheduler runs).
    monkeypatch.setattr(store, "utcnow", lambda: now)
    monkeypatch.setattr(bulk, "utcnow", lambda: now)
    sessions = app.extensions["hub_db"][1]

    # `record()`, in a transaction rolled back: each leg moved on as the check moves it, its
    # miss appended as docs/design.md §3 and §6 describe it.
    by_record = {}
    with sessions() as session:
        transaction = session.begin()
        for leg_id in legs:
            leg = session.get(Referral, leg_id)
            assert leg is not None and leg.deadline_due_at is not None
            due = leg.deadline_due_at
            leg.updated_at, leg.deadline_due_at = now, None
            session.flush()  # the version moves on, as the check's UPDATE moves it
            position = record(
                session, EventType.REFERRAL_DEADLINE_MISSED, subject=f"referrals/{leg.id}",
                sequence=leg.version, source_organization_id=None, actor="scheduler",
                data={"referral": snapshot(leg), "check": "acknowledge", "due_at": iso_utc(due),
                      "source": "scheduler"},
                audience={leg.from_organization_id, leg.to_organization_id})
            by_record[leg_id] = written(session, position)
        transaction.rollback()

    # The bulk path, for the same legs at the same moment (rolled back too: the shared
    # database stays as it was).
    by_bulk = {}
    with sessions() as session:
        transaction = session.begin()
        rows = [session.get(Referral, leg_id) for leg_id in legs]
        due = [Due(leg.id, leg.version, "acknowledge", leg.deadline_due_at)
               for leg in rows if leg is not None and leg.deadline_due_at is not None]
        fired = the_bulk_path(session)(session, now, due)
        assert [miss.id for miss in fired] == legs
        for leg_id in legs:
            position = session.scalars(select(Event.position).where(
                Event.subject == f"referrals/{leg_id}",
                Event.type == EventType.REFERRAL_DEADLINE_MISSED.value)).one()
            by_bulk[leg_id] = written(session, position)
        transaction.rollback()

    assert by_bulk == by_record
    for leg_id, receiver in zip(legs, receivers, strict=True):
        assert by_bulk[leg_id]["audience"] == sorted(
            {uuid.UUID(sender.organization_id), uuid.UUID(receiver.organization_id)})
        assert by_bulk[leg_id]["outbox"] == [now]
