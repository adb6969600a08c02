"""The outbox side: which endpoints get a delivery, idempotence, cost, statistics."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from webhooks.endpoints import PARKED_UNTIL, update_endpoint
from webhooks.metrics import QUEUE_OLDEST_PENDING_SECONDS, QUEUE_PENDING, refresh_queue_gauges
from webhooks.models import Delivery, DeliveryState, Endpoint
from webhooks.queue import Message, enqueue_many, queue_stats

from .conftest import FakeClock, Receiver
from .support import add_endpoint, count, put

ALICE = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
BOB = uuid.UUID("00000000-0000-4000-8000-0000000000b0")


def _targets(sessions: sessionmaker[Session], message_id: str) -> set[uuid.UUID]:
    with sessions() as session:
        return set(session.scalars(
            select(Delivery.endpoint_id).where(Delivery.message_id == message_id)))


def test_enqueue_is_idempotent(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    add_endpoint(sessions, clock, receiver, "/a")
    add_endpoint(sessions, clock, receiver, "/b")
    assert put(sessions, clock, "m1") == 2
    assert put(sessions, clock, "m1") == 0
    with sessions.begin() as session:
        assert enqueue_many(session, [Message("m1", "referral.created", "key", 1)] * 2,
                            clock()) == 0
    assert count(sessions, Delivery) == 2


def test_only_matching_event_types_and_owners_get_deliveries(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    referrals, _ = add_endpoint(sessions, clock, receiver, owner=ALICE,
                                event_types=["referral.*"])
    consents, _ = add_endpoint(sessions, clock, receiver, owner=ALICE,
                               event_types=["consent.*", "referral.closed"])
    bobs, _ = add_endpoint(sessions, clock, receiver, owner=BOB, event_types=["*"])

    assert put(sessions, clock, "m1", event_type="referral.created", owners=[ALICE]) == 1
    assert _targets(sessions, "m1") == {referrals}
    assert put(sessions, clock, "m2", event_type="referral.closed", owners=[ALICE, BOB]) == 3
    assert put(sessions, clock, "m3", event_type="consent.granted", owners=None) == 2
    assert _targets(sessions, "m3") == {consents, bobs}
    assert put(sessions, clock, "m4", event_type="referral.created", owners=[]) == 0
    assert put(sessions, clock, "m5", event_type="other.thing", owners=None) == 1


def test_paused_and_disabled_endpoints_get_parked_deliveries(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    paused, _ = add_endpoint(sessions, clock, receiver, "/p")
    disabled, _ = add_endpoint(sessions, clock, receiver, "/d")
    active, _ = add_endpoint(sessions, clock, receiver, "/a")
    with sessions.begin() as session:
        update_endpoint(session, session.get(Endpoint, paused), status="paused",
                        allow_loopback_http=True, now=clock())
        session.get(Endpoint, disabled).status = "disabled"
    assert put(sessions, clock, "m1") == 3
    with sessions() as session:
        when = dict(session.execute(select(Delivery.endpoint_id, Delivery.next_attempt_at)).all())
    assert when == {paused: PARKED_UNTIL, disabled: PARKED_UNTIL, active: clock.now}


def test_a_batch_costs_two_statements_whatever_the_number_of_endpoints(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    for n in range(10):
        add_endpoint(sessions, clock, receiver, f"/e{n}", owner=ALICE if n % 2 else BOB)
    messages = [Message(f"m{n}", "referral.created", f"k{n % 7}", n, frozenset({ALICE, BOB}))
                for n in range(50)]
    statements: list[str] = []

    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", _count)
    try:
        with sessions.begin() as session:
            assert enqueue_many(session, messages, clock()) == 500
    finally:
        event.remove(engine, "before_cursor_execute", _count)
    work = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "INSERT"))]
    assert len(work) == 2, work
    assert count(sessions, Delivery) == 500


def test_messages_are_validated() -> None:
    with pytest.raises(ValueError, match="message_id"):
        Message("has space", "referral.created", "k", 1)
    with pytest.raises(ValueError, match="event_type"):
        Message("m1", "x" * 65, "k", 1)
    assert Message("m1", "a", "k", 1, [ALICE]).owner_ids == frozenset({ALICE})  # type: ignore[arg-type]


def test_queue_stats_count_the_backlog_and_measure_the_lag(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    add_endpoint(sessions, clock, receiver)
    with sessions() as session:
        assert queue_stats(session, clock()).pending == 0
        assert queue_stats(session, clock()).oldest_pending_age_seconds is None
    put(sessions, clock, "m1", seq=1)
    put(sessions, clock, "m2", seq=2)  # waits for m1: not late
    clock.advance(seconds=30)
    with sessions() as session:
        stats = refresh_queue_gauges(session, clock())
    assert (stats.pending, stats.oldest_pending_age_seconds) == (2, 30.0)
    assert QUEUE_PENDING._value.get() == 2
    assert QUEUE_OLDEST_PENDING_SECONDS._value.get() == 30.0

    receiver.status = 500  # m1 is scheduled for a retry: nothing is sendable now
    dispatchers().run_once()
    with sessions() as session:
        stats = queue_stats(session, clock())
    assert (stats.pending, stats.oldest_pending_age_seconds) == (2, None)
    with sessions() as session:
        assert session.scalar(select(Delivery.state).where(Delivery.message_id == "m1")) == (
            DeliveryState.PENDING)
