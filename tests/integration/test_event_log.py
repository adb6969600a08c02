"""The event log itself: append-only, written with its outbox row, one per change."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DatabaseError

from hub.db import db
from hub.events.store import Event, OutboxEntry
from tests.helpers import Network


def test_every_event_has_its_outbox_row(app: Flask, network: Network) -> None:
    a, b = network.partner(), network.partner()
    leg = a.refer(b)
    b.act(leg["id"], "acknowledge")
    with app.app_context():
        session = db.session
        events = session.scalars(
            select(Event).where(Event.subject == f"referrals/{leg['id']}")
        ).all()
        assert len(events) == 2
        outboxed = session.scalar(
            select(func.count()).select_from(OutboxEntry)
            .where(OutboxEntry.event_position.in_([e.position for e in events]))
        )
        assert outboxed == 2


def test_the_database_refuses_to_change_or_delete_events(app: Flask, network: Network) -> None:
    a, b = network.partner(), network.partner()
    leg = a.refer(b)
    subject = f"referrals/{leg['id']}"
    with app.app_context():
        session = db.session
        with pytest.raises(DatabaseError, match="immutable"):
            session.execute(update(Event).where(Event.subject == subject).values(type="x"))
        session.rollback()
        with pytest.raises(DatabaseError, match="immutable"):
            session.execute(text("DELETE FROM events WHERE subject = :s"), {"s": subject})
        session.rollback()
        assert session.scalar(select(Event.type).where(Event.subject == subject)) == \
            "referral.sent"


def test_a_refused_transition_records_nothing(app: Flask, network: Network) -> None:
    a, b = network.partner(), network.partner()
    leg = a.refer(b)
    assert b.act(leg["id"], "complete", {"outcome": "employed"}).status_code == 409
    history = a.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
    assert [e["type"] for e in history] == ["referral.sent"]
    assert a.get(f"/api/v1/referrals/{leg['id']}").get_json()["version"] == 1
