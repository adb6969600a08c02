"""The due-at columns the scheduled checks read (docs/design.md §6): set by the transitions,
cleared or moved by the check that fires, filled by the migration that added them; batches fired
set-based, their events appended as `record()` appends one; `run_once` skipping the checks
with nothing due."""

from __future__ import annotations

import importlib.util
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from flask import Flask
from sqlalchemy import select, update

from hub.db import db, iso_utc
from hub.events.bulk import NewEvent, record_many
from hub.events.store import Event, EventAudience, OutboxEntry, record
from hub.events.types import EventType
from hub.followups import leg_checks, tick
from hub.followups.deadlines import add_business_days
from hub.followups.leg_checks import Due, ReferralCheck
from hub.referrals.legs import Referral, snapshot
from tests.helpers import Network, Partner
from tests.integration.test_followups import events_of, moment, run_checks

MIGRATION = (Path(__file__).resolve().parents[2] / "migrations" / "versions"
             / "2026_11_23_c3d4e5f6a7b8_check_due_columns.py")
DUE_AT = ("deadline_due_at", "followup_due_at", "checkin_due_at")


def stored(app: Flask, leg_id: str) -> dict[str, Any]:
    with app.app_context(), db.job_session() as session:
        leg = session.get(Referral, uuid.UUID(leg_id))
        assert leg is not None
        return {column.key: getattr(leg, column.key) for column in Referral.__table__.c}


def fired(app: Flask, leg_id: str) -> set[str]:
    with app.app_context(), db.job_session() as session:
        return set(session.scalars(select(ReferralCheck.kind)
                                   .where(ReferralCheck.referral_id == uuid.UUID(leg_id))))


def missed(partner: Partner, leg_id: str) -> list[str]:
    return [e["data"]["check"] for e in events_of(partner, leg_id)
            if e["type"] == "referral.deadline_missed"]


def complete(receiver: Partner, leg_id: str) -> None:
    for action, body in (("acknowledge", {}), ("accept", {}), ("start", {}),
                         ("complete", {"outcome": "employed"})):
        assert receiver.act(leg_id, action, body).status_code == 200


def test_each_status_arms_the_check_that_comes_next(app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    sent = stored(app, leg["id"])
    assert sent["deadline_due_at"] == sent["acknowledge_by"]
    assert sent["followup_due_at"] is None and sent["checkin_due_at"] is None

    assert receiver.act(leg["id"], "acknowledge").status_code == 200
    acknowledged = stored(app, leg["id"])
    assert acknowledged["deadline_due_at"] == acknowledged["decide_by"] is not None

    assert receiver.act(leg["id"], "accept").status_code == 200
    accepted = stored(app, leg["id"])
    assert accepted["deadline_due_at"] == accepted["start_by"] is not None
    assert accepted["checkin_due_at"] == add_business_days(accepted["accepted_at"], 3)

    assert receiver.act(leg["id"], "start").status_code == 200
    started = stored(app, leg["id"])
    assert started["deadline_due_at"] is None  # no deadline once started
    assert started["checkin_due_at"] == accepted["checkin_due_at"]  # still to ask

    assert receiver.act(leg["id"], "complete", {"outcome": "employed"}).status_code == 200
    completed = stored(app, leg["id"])
    assert completed["followup_due_at"] == completed["closed_at"] + timedelta(days=30)
    assert completed["checkin_due_at"] is None and completed["deadline_due_at"] is None


def test_a_consent_withdrawal_disarms_the_legs_it_cancels(app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    participant = sender.register_participant()["id"]
    given = sender.grant_consent(participant, receiver)
    leg = sender.refer(receiver, participant, consent=False)
    for action in ("acknowledge", "accept"):
        assert receiver.act(leg["id"], action).status_code == 200
    armed = stored(app, leg["id"])
    assert armed["deadline_due_at"] is not None and armed["checkin_due_at"] is not None
    assert sender.post(f"/api/v1/consents/{given['id']}/withdraw").status_code == 200
    cancelled = stored(app, leg["id"])
    assert cancelled["status"] == "cancelled"
    assert all(cancelled[column] is None for column in DUE_AT)


def test_a_check_that_fires_takes_its_leg_out_of_its_index(app: Flask,
                                                            network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    late = sender.refer(receiver)
    before = stored(app, late["id"])
    run_checks(app, before["acknowledge_by"] + timedelta(minutes=1))
    after = stored(app, late["id"])
    assert after["deadline_due_at"] is None and after["version"] == before["version"] + 1
    assert missed(sender, late["id"]) == ["acknowledge"]

    done = sender.refer(receiver)
    complete(receiver, done["id"])
    closed_at = stored(app, done["id"])["closed_at"]
    run_checks(app, closed_at + timedelta(days=31))
    assert stored(app, done["id"])["followup_due_at"] == closed_at + timedelta(days=180)
    run_checks(app, closed_at + timedelta(days=181))
    assert stored(app, done["id"])["followup_due_at"] is None
    # No follow_up_contact consent: recorded as skipped, once each, without an event.
    assert {"followup_30", "followup_180"} <= fired(app, done["id"])
    assert not [e for e in events_of(sender, done["id"]) if e["type"] == "referral.followup_due"]


def test_a_leg_that_moved_on_unseen_is_cleared_without_an_event(app: Flask,
                                                                 network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    with app.app_context(), db.job_session() as session:  # a status change that left the
        session.execute(update(Referral)  # column set (what arm_checks would have cleared)
                        .where(Referral.id == uuid.UUID(leg["id"]))
                        .values(status="cancelled", cancel_reason="other"))
    run_checks(app, stored(app, leg["id"])["acknowledge_by"] + timedelta(minutes=1))
    assert stored(app, leg["id"])["deadline_due_at"] is None
    assert missed(sender, leg["id"]) == [] and "acknowledge" not in fired(app, leg["id"])


def test_a_leg_changed_since_it_was_read_keeps_no_claim(app: Flask, network: Network) -> None:
    """SQLite has no row locks: the receiver may answer between the due query and the firing;
    the leg is then left, unclaimed, for the next pass to see in its new state."""
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    read = stored(app, leg["id"])
    assert receiver.act(leg["id"], "acknowledge").status_code == 200
    now = read["acknowledge_by"] + timedelta(minutes=1)
    with app.app_context(), db.job_session() as session:
        count = leg_checks._fire(
            session, now, [Due(read["id"], read["version"], "acknowledge", read["acknowledge_by"])],
            column="deadline_due_at", event=leg_checks._missed)
    assert count == 0
    assert "acknowledge" not in fired(app, leg["id"]) and missed(sender, leg["id"]) == []
    answered = stored(app, leg["id"])
    assert answered["version"] == read["version"] + 1
    assert answered["deadline_due_at"] == answered["decide_by"]


def test_run_once_opens_no_transaction_for_checks_with_nothing_due(
        app: Flask, network: Network) -> None:
    sessions = app.extensions["hub_db"][1]
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    run_checks(app, long_ago)  # digests what other tests recorded without a digest after
    assert tick.pending(sessions, long_ago) == set()
    assert run_checks(app, long_ago) == dict.fromkeys(tick.CHECKS, 0)

    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    due = moment(leg["deadlines"]["acknowledge_by"]) + timedelta(minutes=1)
    assert "deadlines_missed" in tick.pending(sessions, due)
    assert run_checks(app, due)["deadlines_missed"] >= 1
    assert missed(sender, leg["id"]) == ["acknowledge"]


def test_events_appended_in_a_batch_are_those_record_appends(app: Flask,
                                                             network: Network) -> None:
    first, second = network.partner(), network.partner()
    orgs = {uuid.UUID(first.organization_id), uuid.UUID(second.organization_id)}
    subject = f"tests/{uuid.uuid4()}"
    data = {"check": "acknowledge", "note": "Café «ouvert» \\ \"guillemets\"", "n": [1, None]}
    with app.app_context(), db.job_session() as session:
        one = record(session, EventType.REFERRAL_DEADLINE_MISSED, subject=subject, sequence=1,
                     source_organization_id=None, actor="scheduler", data=data, audience=orgs)
        many = record_many(session, [
            NewEvent(EventType.REFERRAL_DEADLINE_MISSED, subject, 2, data, orgs),
            NewEvent(EventType.REFERRAL_FOLLOWUP_DUE, subject, 3, {"check": "followup_30"},
                     {uuid.UUID(first.organization_id)}),
        ])
        positions = [one, *many]
        events = {e.position: e for e in session.scalars(
            select(Event).where(Event.position.in_(positions)))}
        audience = {p: set(session.scalars(select(EventAudience.organization_id)
                                           .where(EventAudience.event_position == p)))
                    for p in positions}
        outbox = set(session.scalars(select(OutboxEntry.event_position)
                                     .where(OutboxEntry.event_position.in_(positions))))
    assert outbox == set(positions) and len(set(positions)) == 3
    by_one, by_many = events[one], events[many[0]]
    for name in ("type", "source", "subject", "actor", "data", "transaction_order"):
        assert getattr(by_many, name) == getattr(by_one, name), name
    assert (by_one.sequence, by_many.sequence, events[many[1]].sequence) == (1, 2, 3)
    assert audience == {one: orgs, many[0]: orgs, many[1]: {uuid.UUID(first.organization_id)}}
    assert events[many[1]].data == {"check": "followup_30"}
    assert len({e.id for e in events.values()}) == 3
    if app.extensions["hub_db"][0].dialect.name == "postgresql":
        assert by_one.transaction_order > 0  # the appending transaction's id, as record()'s


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_due_columns", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_fills_the_columns_as_the_transitions_and_checks_left_them(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    waiting = sender.refer(receiver)  # sent: its acknowledgement is due
    late = sender.refer(receiver)  # acknowledged, the decision's deadline fired already
    assert receiver.act(late["id"], "acknowledge").status_code == 200
    run_checks(app, stored(app, late["id"])["decide_by"] + timedelta(minutes=1))
    done, followed = sender.refer(receiver), sender.refer(receiver)
    complete(receiver, done["id"])
    complete(receiver, followed["id"])  # its 30-day follow-up fired already
    run_checks(app, stored(app, followed["id"])["closed_at"] + timedelta(days=31))
    accepted = sender.refer(receiver)  # accepted now: its check-in is to come
    for action in ("acknowledge", "accept"):
        assert receiver.act(accepted["id"], action).status_code == 200
    legs = [uuid.UUID(leg["id"]) for leg in (waiting, late, accepted, done, followed)]
    expected = {leg: {c: stored(app, str(leg))[c] for c in DUE_AT} for leg in legs}
    assert expected[legs[1]]["deadline_due_at"] is None
    assert expected[legs[4]]["followup_due_at"] is not None

    table = Referral.__table__
    with app.extensions["hub_db"][0].connect() as connection:
        transaction = connection.begin()  # rolled back: the shared database stays as it was
        connection.execute(update(table).where(table.c.id.in_(legs))
                           .values(dict.fromkeys(DUE_AT)))
        _migration().fill(connection)
        filled = {row.id: {c: getattr(row, c) for c in DUE_AT} for row in connection.execute(
            select(table.c.id, *(table.c[c] for c in DUE_AT)).where(table.c.id.in_(legs)))}
        transaction.rollback()
    assert filled == expected


def test_a_pass_fires_a_bounded_number_of_batches_and_the_next_passes_the_rest(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    legs = [sender.refer(receiver) for _ in range(7)]
    now = max(moment(leg["deadlines"]["acknowledge_by"]) for leg in legs) + timedelta(minutes=1)
    batch = 2
    counts = []
    while not counts or counts[-1]:
        with app.app_context(), db.job_session() as session:
            counts.append(leg_checks.deadlines_missed(session, now, limit=batch))
    # At least the 7 legs are due: the first pass stops at its bound, 3 batches of 2.
    assert counts[0] == leg_checks.DEADLINE_BATCHES_PER_PASS * batch
    assert all(n <= leg_checks.DEADLINE_BATCHES_PER_PASS * batch for n in counts)
    for leg in legs:
        assert missed(sender, leg["id"]) == ["acknowledge"]


def test_a_missed_deadline_event_holds_the_snapshot_the_hub_writes_elsewhere(
        app: Flask, network: Network) -> None:
    """On PostgreSQL the snapshot is built by the server (`leg_checks._FIRE_MISSED`): it must be
    `referrals.snapshot` to the character, with and without microseconds."""
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    leg_id = uuid.UUID(leg["id"])
    with app.app_context(), db.job_session() as session:
        stored_leg = session.get(Referral, leg_id)
        assert stored_leg is not None
        stored_leg.created_at = stored_leg.created_at.replace(microsecond=0)
        stored_leg.acknowledge_by = stored_leg.acknowledge_by.replace(microsecond=123456)
        stored_leg.deadline_due_at = stored_leg.acknowledge_by
        due = stored_leg.acknowledge_by
    run_checks(app, due + timedelta(minutes=1))
    with app.app_context(), db.job_session() as session:
        stored_leg = session.get(Referral, leg_id)
        event = session.scalars(select(Event).where(
            Event.subject == f"referrals/{leg_id}",
            Event.type == EventType.REFERRAL_DEADLINE_MISSED.value)).one()
        assert stored_leg is not None
        assert event.data == {"referral": snapshot(stored_leg), "check": "acknowledge",
                              "due_at": iso_utc(due), "source": "scheduler"}
        assert event.sequence == stored_leg.version and event.actor == "scheduler"
        assert set(session.scalars(select(EventAudience.organization_id).where(
            EventAudience.event_position == event.position))) == {
                uuid.UUID(sender.organization_id), uuid.UUID(receiver.organization_id)}
        assert session.scalar(select(OutboxEntry.event_position).where(
            OutboxEntry.event_position == event.position)) == event.position
