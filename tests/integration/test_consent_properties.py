"""Property: whatever the sequence of grants, withdrawals, expiries, checks, referrals and
answers, no payload built for an organization carries the participant's personal data unless
a consent covered that organization at the moment the payload was built — and one that is
entitled (holding an open leg, covered) does get it.

A model of the consents (the oracle) runs beside the hub; the clock is faked, everything else
is the real use cases and the real database (both backends).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.consent import consents, visibility, withdrawal
from hub.db import db
from hub.directory.organizations import create_organization
from hub.errors import NotFound
from hub.events.envelope import render_events
from hub.events.feed import FeedCursor, read_feed, subject_history
from hub.events.store import Event
from hub.referrals import lifecycle
from hub.referrals.handoffs import send_referral, transition
from hub.referrals.legs import Referral
from hub.referrals.lifecycle import Action
from hub.referrals.participants import register_participant

RECEIVERS = 3
KEY = b"property-test-pseudonym-key"


@dataclass
class Grant:
    id: uuid.UUID
    organizations: frozenset[int] | None  # None: network-wide
    expires_at: datetime
    withdrawn: bool = False


@dataclass
class Model:
    """What the consents say, kept apart from the hub's tables."""

    grants: list[Grant] = field(default_factory=list)

    def covers(self, receiver: int, now: datetime) -> bool:
        return any(
            not g.withdrawn and g.expires_at > now
            and (g.organizations is None or receiver in g.organizations)
            for g in self.grants
        )


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class World:
    owner: Caller
    receivers: list[Caller]
    coordinator: Caller
    start: FeedCursor  # feeds are read from here: the shared database holds other tests' events


@pytest.fixture
def world(app: Flask) -> World:
    with app.app_context(), db.job_session() as session:
        def member(kind: str) -> Caller:
            org = create_organization(session, name=f"Propriété {uuid.uuid4().hex[:6]}",
                                      kind=kind, region="06")
            return Caller(org.id, f"test:{kind}", org.is_coordinator)

        last = session.scalars(select(Event).order_by(
            Event.transaction_order.desc(), Event.position.desc()).limit(1)).first()
        return World(member("community"),
                     [member("regional_partner") for _ in range(RECEIVERS)],
                     member("coordination"),
                     FeedCursor.of(last) if last else FeedCursor.parse("0"))


receiver_index = st.integers(0, RECEIVERS - 1)
steps = st.lists(st.one_of(
    st.tuples(st.just("grant"),
              st.none() | st.frozensets(receiver_index, min_size=1),
              st.integers(1, 72)),
    st.tuples(st.just("withdraw"), st.integers(0, 20)),
    st.tuples(st.just("advance"), st.integers(1, 48)),
    st.tuples(st.just("check")),
    st.tuples(st.just("send"), receiver_index),
    st.tuples(st.just("answer"), st.integers(0, 20)),
), min_size=1, max_size=14)


@contextmanager
def unit(app: Flask) -> Iterator[Session]:
    with app.app_context(), db.job_session() as session:
        yield session


def payloads_for(session: Session, reader_caller: Caller, participant_id: uuid.UUID,
                 legs: list[uuid.UUID], start: FeedCursor) -> str:
    """Everything the hub would hand this organization now: legs, histories, feed, person."""
    reader = visibility.Reader(session, reader_caller, KEY)
    out: list[object] = []
    for leg_id in legs:
        leg = session.get(Referral, leg_id)
        assert leg is not None
        if reader_caller.is_coordinator or leg.party_of(reader_caller.organization_id):
            out.append(reader.referral(leg, with_chain=True))
            out.append(render_events(session, reader, subject_history(session, leg.subject)))
    out.append(render_events(session, reader, read_feed(
        session, reader_caller, after=start, limit=500)))
    try:
        person = visibility.visible_participant(session, reader_caller, participant_id)
        out.append(reader.participant(person))
    except NotFound:
        pass
    return json.dumps(out, default=str)


@pytest.mark.timeout(600)  # dozens of stories, each reading every payload after every step
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps)
# The stories that matter most, always run besides the random ones:
@example(steps=[("grant", None, 24), ("send", 0), ("answer", 0), ("withdraw", 0), ("send", 0)])
@example(steps=[("grant", frozenset({0}), 5), ("send", 0), ("advance", 6), ("send", 0),
                ("check",), ("send", 1)])
@example(steps=[("grant", frozenset({0, 1}), 48), ("grant", frozenset({1}), 48), ("send", 1),
                ("send", 0), ("withdraw", 0), ("send", 1), ("send", 0)])
def test_no_payload_carries_personal_data_where_no_consent_covers(
        app: Flask, world: World, steps: list[tuple]) -> None:
    marker = uuid.uuid4().hex[:12]
    clock = Clock(datetime.now(UTC))
    model = Model()
    legs: list[tuple[uuid.UUID, int]] = []

    with mock.patch("hub.consent.consents.utcnow", clock):
        with unit(app) as session:
            participant_id = register_participant(
                session, organization_id=world.owner.organization_id,
                given_name=f"Nom{marker}", family_name="Tremblay", preferred_language="fr",
                email=f"{marker}@example.org").id

        for step in steps:
            kind = step[0]
            with unit(app) as session:
                if kind == "grant":
                    _, named, hours = step
                    expires = clock.now + timedelta(hours=hours)
                    granted = consents.grant(
                        session, world.owner, participant_id, purpose="referral_sharing",
                        evidence="written", network_wide=named is None,
                        organization_ids=[world.receivers[i].organization_id
                                          for i in sorted(named or ())],
                        expires_at=expires, now=clock.now)
                    model.grants.append(Grant(granted.id, named, expires))
                elif kind == "withdraw" and model.grants:
                    grant = model.grants[step[1] % len(model.grants)]
                    try:
                        withdrawal.withdraw(session, world.owner, grant.id, now=clock.now)
                        assert grant.expires_at > clock.now or grant.withdrawn
                        grant.withdrawn = True
                    except consents.ConsentNotActive:
                        assert grant.expires_at <= clock.now and not grant.withdrawn
                elif kind == "advance":
                    clock.now += timedelta(hours=step[1])
                elif kind == "check":
                    withdrawal.expire_due(session, now=clock.now)
                elif kind == "send":
                    receiver = step[1]
                    try:
                        leg = send_referral(
                            session, world.owner, participant_id=participant_id,
                            to_organization_id=world.receivers[receiver].organization_id,
                            pathway="employment", reason_for_referral=f"Raison {marker}")
                        legs.append((leg.id, receiver))
                        assert model.covers(receiver, clock.now)
                    except consents.ConsentRequired:
                        assert not model.covers(receiver, clock.now)
                elif kind == "answer" and legs:
                    leg_id, receiver = legs[step[1] % len(legs)]
                    leg = session.get(Referral, leg_id)
                    if leg is not None and leg.status == lifecycle.Status.SENT:
                        transition(session, world.receivers[receiver], leg_id,
                                   Action.ACKNOWLEDGE, note=f"Note {marker}")

            with unit(app) as session:
                leg_ids = [leg_id for leg_id, _ in legs]
                for index, receiver_caller in enumerate(world.receivers):
                    seen = payloads_for(session, receiver_caller, participant_id, leg_ids,
                                        world.start)
                    covered = model.covers(index, clock.now)
                    if marker in seen:
                        assert covered, (step, index)
                    holds_open_leg = any(
                        r == index and session.get(Referral, leg_id).status  # type: ignore[union-attr]
                        in visibility.OPEN_STATUSES for leg_id, r in legs)
                    if covered and holds_open_leg:
                        assert f"Nom{marker}" in seen, (step, index)
                assert marker not in payloads_for(session, world.coordinator, participant_id,
                                                  leg_ids, world.start)
