"""Recording a batch of results: 2xx in bulk, the rest one by one, same verdicts either way;
and the dispatcher's turns (record and claim in one transaction) keep order and once-only."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from webhooks.claiming import claim
from webhooks.models import Delivery, DeliveryState, Endpoint
from webhooks.queue import Message, enqueue_many
from webhooks.recording import Sent, record
from webhooks.sender import AttemptResult, Outcome

from .conftest import FakeClock, Receiver
from .support import add_endpoint, attempts, delivery, endpoint, put, wait_for


def _sent(sessions: sessionmaker[Session], message_id: str, endpoint_id: uuid.UUID,
          at: datetime, status: int, duration_ms: float) -> Sent:
    outcome = Outcome.DELIVERED if status < 300 else Outcome.RETRY
    error = None if status < 300 else f"HTTP {status}"
    return Sent(delivery(sessions, message_id, endpoint_id).id, endpoint_id, at,
                AttemptResult(outcome, status, duration_ms, None, error))


def test_a_batch_keeps_each_result_and_the_health_of_each_endpoint_ends_as_its_last_answer(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    # healthy: was failing, now answers 2xx to everything; flaky: 2xx then 500; recovered:
    # 503 then 2xx; taken: one of its deliveries was taken over by another dispatcher.
    names = ("healthy", "flaky", "recovered", "taken")
    ids = {name: add_endpoint(sessions, clock, receiver, f"/{name}")[0] for name in names}
    for n in (1, 2):
        put(sessions, clock, f"m{n}", key=f"k{n}")
    with sessions.begin() as session:
        session.execute(update(Endpoint).where(Endpoint.id == ids["healthy"])
                        .values(failing_since=clock() - timedelta(days=1)))
        leased = claim(session, worker_id="w1", now=clock(),
                       lease_until=clock() + timedelta(seconds=60), limit=100,
                       per_endpoint=100)
    assert len(leased) == 8
    with sessions.begin() as session:
        session.execute(update(Delivery).where(
            Delivery.id == delivery(sessions, "m1", ids["taken"]).id).values(lease_owner="w2"))

    start = clock()
    batch = [
        _sent(sessions, "m1", ids["healthy"], start, 200, 1.5),
        _sent(sessions, "m1", ids["flaky"], start, 201, 2.5),
        _sent(sessions, "m1", ids["recovered"], start, 503, 3.5),
        _sent(sessions, "m1", ids["taken"], start, 200, 4.5),
        _sent(sessions, "m2", ids["healthy"], start + timedelta(seconds=1), 204, 5.5),
        _sent(sessions, "m2", ids["flaky"], start + timedelta(seconds=1), 500, 6.5),
        _sent(sessions, "m2", ids["recovered"], start + timedelta(seconds=1), 202, 7.5),
        _sent(sessions, "m2", ids["taken"], start + timedelta(seconds=1), 200, 8.5),
    ]
    now = clock.advance(seconds=2)
    with sessions.begin() as session:
        outcomes = record(session, batch, worker_id="w1", now=now)

    assert outcomes == ["delivered", "delivered", "retry", None,
                        "delivered", "retry", "delivered", "delivered"]
    for sent in batch:
        row = next(d for d in _all(sessions) if d.id == sent.delivery_id)
        logged = attempts(sessions, row.id)
        if sent.delivery_id == batch[3].delivery_id:  # not ours any more: left alone
            assert (row.state, row.attempts, row.lease_owner, logged) == (
                DeliveryState.PENDING, 0, "w2", [])
            continue
        assert row.attempts == 1
        assert row.last_status_code == sent.result.status_code
        assert row.last_duration_ms == sent.result.duration_ms
        assert row.lease_owner is None and row.lease_until is None
        [attempt] = logged
        assert (attempt.status_code, attempt.duration_ms, attempt.attempted_at) == (
            sent.result.status_code, sent.result.duration_ms, sent.attempted_at)
        if sent.result.outcome is Outcome.DELIVERED:
            assert (row.state, row.delivered_at, row.last_error) == (
                DeliveryState.DELIVERED, now, None)
        else:
            assert row.state == DeliveryState.PENDING
            assert row.next_attempt_at > now and row.delivered_at is None
            assert row.last_error == f"HTTP {sent.result.status_code}"
    assert endpoint(sessions, ids["healthy"]).failing_since is None
    assert endpoint(sessions, ids["flaky"]).failing_since == start + timedelta(seconds=1)
    assert endpoint(sessions, ids["recovered"]).failing_since is None
    assert endpoint(sessions, ids["taken"]).failing_since is None


def _all(sessions: sessionmaker[Session]) -> list[Delivery]:
    with sessions() as session:
        return list(session.scalars(select(Delivery)))


def test_run_forever_delivers_everything_once_in_order_per_key_and_endpoint(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    # Turns record results and claim the next messages in one transaction, in bulk: each key's
    # next message must still wait for the previous one, on every endpoint.
    ids = [add_endpoint(sessions, clock, receiver, f"/e{n}")[0] for n in range(3)]
    with sessions.begin() as session:
        enqueue_many(session, [Message(f"k{k}.{seq}", "referral.created", f"k{k}", seq)
                               for seq in (1, 2, 3) for k in range(15)], clock())
    dispatcher = dispatchers(concurrency=12)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run_forever, args=(stop,),
                              kwargs={"idle_sleep": 0.01})
    thread.start()
    try:
        wait_for(lambda: sum(len(receiver.ids(f"/e{n}")) for n in range(3)) == 135, timeout=30)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    for n, endpoint_id in enumerate(ids):
        got = receiver.ids(f"/e{n}")
        assert sorted(got) == sorted(f"k{k}.{seq}" for seq in (1, 2, 3) for k in range(15))
        for k in range(15):
            assert [i for i in got if i.startswith(f"k{k}.")] == [f"k{k}.1", f"k{k}.2", f"k{k}.3"]
        rows = [d for d in _all(sessions) if d.endpoint_id == endpoint_id]
        assert {(d.state, d.attempts, d.lease_owner) for d in rows} == {
            (DeliveryState.DELIVERED, 1, None)}
        assert all(len(attempts(sessions, d.id)) == 1 for d in rows)
