"""The dispatcher end to end: a real database (SQLite and PostgreSQL), a real local receiver,
and a fake clock moved by hand instead of waiting for retries."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from webhooks.endpoints import PARKED_UNTIL, recover_failed, redeliver, rotate_secret
from webhooks.endpoints import update_endpoint as update
from webhooks.models import Delivery, DeliveryState, Endpoint, EndpointStatus
from webhooks.schedule import RETRY_DELAYS
from webhooks.signing import SignatureRejected, verify

from .conftest import FakeClock, Receiver, Reply
from .support import (
    add_endpoint,
    attempts,
    body_for,
    collapse,
    delivery,
    endpoint,
    put,
    run_until_idle,
    wait_for,
)


def _delivered_total() -> float:
    return REGISTRY.get_sample_value("webhook_deliveries_total", {"outcome": "delivered"}) or 0.0


def test_a_message_is_delivered_once_and_verifies_with_the_reference_library(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    endpoint_id, secret = add_endpoint(sessions, clock, receiver)
    assert put(sessions, clock, "msg_1") == 1
    before = _delivered_total()

    dispatcher = dispatchers()
    assert dispatcher.run_once() == 1
    assert dispatcher.run_once() == 0

    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["webhook-id"] == "msg_1"
    assert request.body == body_for("msg_1")
    assert Webhook(secret).verify(request.body, request.headers) == json.loads(request.body)
    sent = delivery(sessions, "msg_1")
    assert sent.state == DeliveryState.DELIVERED
    assert sent.attempts == 1
    assert sent.lease_owner is None and sent.lease_until is None
    assert sent.delivered_at == clock.now
    [logged] = attempts(sessions, sent.id)
    assert (logged.outcome, logged.status_code, logged.error) == ("delivered", 204, None)
    assert _delivered_total() == before + 1
    assert [r.outcome.value for r in dispatchers.results] == ["delivered"]
    assert endpoint(sessions, endpoint_id).failing_since is None


def test_order_is_held_per_key_and_endpoint_while_other_keys_and_endpoints_flow(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    slow, _ = add_endpoint(sessions, clock, receiver, "/slow")
    fast, _ = add_endpoint(sessions, clock, receiver, "/fast")
    put(sessions, clock, "a1", key="A", seq=1)
    put(sessions, clock, "a2", key="A", seq=2)
    put(sessions, clock, "b1", key="B", seq=1)
    receiver.plan[("/slow", "a1")] = [Reply(500)]
    dispatcher = dispatchers()

    run_until_idle(dispatcher)
    assert receiver.ids("/fast").index("a1") < receiver.ids("/fast").index("a2")
    assert sorted(receiver.ids("/fast")) == ["a1", "a2", "b1"]
    assert sorted(receiver.ids("/slow")) == ["a1", "b1"]  # a2 waits for a1
    held = delivery(sessions, "a2", slow)
    assert (held.state, held.attempts) == (DeliveryState.PENDING, 0)
    assert delivery(sessions, "b1", slow).state == DeliveryState.DELIVERED
    assert endpoint(sessions, fast).failing_since is None

    clock.advance(seconds=7)  # past the first retry (5 s ± 20 %)
    run_until_idle(dispatcher)
    assert receiver.ids("/slow")[2:] == ["a1", "a2"]
    assert delivery(sessions, "a2", slow).state == DeliveryState.DELIVERED
    assert endpoint(sessions, slow).failing_since is None  # a success clears it


def test_three_failures_then_success_keeps_order_and_follows_the_schedule(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    add_endpoint(sessions, clock, receiver)
    keys = {"K": ["k1", "k2", "k3"], "L": ["l1", "l2"]}
    for key, ids in keys.items():
        for seq, message_id in enumerate(ids, 1):
            put(sessions, clock, message_id, key=key, seq=seq)
    receiver.plan["/hook"] = [Reply(500), Reply(500), Reply(500)]
    dispatcher = dispatchers()

    for _ in range(30):
        if dispatcher.run_once():
            continue
        with sessions() as session:
            due = [d.next_attempt_at for d in session.query(Delivery)
                   if d.state == DeliveryState.PENDING and d.next_attempt_at > clock.now]
        if not due:
            break
        clock.now = min(due)  # straight to the next retry: nothing runs late
    for key, ids in keys.items():
        assert collapse([i for i in receiver.ids() if i in ids]) == ids, key
    failures = 0
    for message_id in keys["K"] + keys["L"]:
        sent = delivery(sessions, message_id)
        assert sent.state == DeliveryState.DELIVERED
        log = attempts(sessions, sent.id)
        assert [a.status_code for a in log][-1] == 204
        failures += len(log) - 1
        for n, (earlier, later) in enumerate(zip(log, log[1:], strict=False)):
            ratio = (later.attempted_at - earlier.attempted_at) / RETRY_DELAYS[n]
            assert 0.8 <= ratio <= 1.2, (message_id, n, ratio)
    assert failures == 3


def test_retry_after_is_honoured(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    add_endpoint(sessions, clock, receiver)
    put(sessions, clock, "m1")
    receiver.plan["/hook"] = [Reply(503, {"Retry-After": "3600"})]
    dispatcher = dispatchers()
    start = clock.now

    assert dispatcher.run_once() == 1
    waiting = delivery(sessions, "m1")
    assert waiting.next_attempt_at == start + timedelta(hours=1)
    assert waiting.last_status_code == 503
    clock.advance(minutes=59)
    assert dispatcher.run_once() == 0
    clock.advance(minutes=1)
    assert dispatcher.run_once() == 1
    assert delivery(sessions, "m1").state == DeliveryState.DELIVERED


def test_410_dead_letters_and_disables_at_once_and_the_owner_is_told(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    gone, _ = add_endpoint(sessions, clock, receiver, "/gone")
    other, _ = add_endpoint(sessions, clock, receiver, "/other")
    put(sessions, clock, "m1", key="A")
    put(sessions, clock, "m2", key="B")
    receiver.standing["/gone"] = Reply(410)
    dispatcher = dispatchers()

    run_until_idle(dispatcher)
    disabled = endpoint(sessions, gone)
    assert disabled.status == EndpointStatus.DISABLED
    assert disabled.disabled_reason == "the endpoint answered 410 Gone"
    assert dispatchers.disabled.calls == [
        (gone, EndpointStatus.DISABLED, "the endpoint answered 410 Gone")
    ]
    for message_id in ("m1", "m2"):
        assert delivery(sessions, message_id, gone).state == DeliveryState.DEAD
        assert delivery(sessions, message_id, other).state == DeliveryState.DELIVERED
    assert endpoint(sessions, other).status == EndpointStatus.ACTIVE

    # Nothing more is sent to it, nothing is lost: new messages wait, parked.
    put(sessions, clock, "m3", key="C")
    requests_before = len(receiver.ids("/gone"))
    run_until_idle(dispatcher)
    assert len(receiver.ids("/gone")) == requests_before
    assert delivery(sessions, "m3", gone).next_attempt_at == PARKED_UNTIL

    # The owner fixes it and re-activates: the waiting message flows, the failure is forgotten.
    del receiver.standing["/gone"]
    with sessions.begin() as session:
        update(session, session.get(Endpoint, gone), status="active",
               allow_loopback_http=True, now=clock())
    fixed = endpoint(sessions, gone)
    assert (fixed.failing_since, fixed.disabled_reason) == (None, None)
    run_until_idle(dispatcher)
    assert delivery(sessions, "m3", gone).state == DeliveryState.DELIVERED
    assert len(dispatchers.disabled.calls) == 1


def test_a_failing_notification_does_not_undo_the_disabling(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    gone, _ = add_endpoint(sessions, clock, receiver)
    put(sessions, clock, "m1")
    receiver.status = 410
    dispatchers.disabled.fail = True

    assert dispatchers().run_once() == 1
    assert len(dispatchers.disabled.calls) == 1
    assert endpoint(sessions, gone).status == EndpointStatus.DISABLED
    sent = delivery(sessions, "m1")
    assert (sent.state, sent.lease_owner) == (DeliveryState.DEAD, None)
    assert len(attempts(sessions, sent.id)) == 1


def test_an_endpoint_failing_for_five_days_is_disabled(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    down, _ = add_endpoint(sessions, clock, receiver)
    receiver.status = 500
    dispatcher = dispatchers()
    start = clock.now
    for day in range(5):
        put(sessions, clock, f"m{day}", key=f"k{day}")
        run_until_idle(dispatcher)
        assert endpoint(sessions, down).status == EndpointStatus.ACTIVE, day
        assert endpoint(sessions, down).failing_since == start
        clock.advance(days=1)
    assert dispatchers.disabled.calls == []

    put(sessions, clock, "m5", key="k5")
    run_until_idle(dispatcher)  # five days after the first failure
    disabled = endpoint(sessions, down)
    assert (disabled.status, disabled.disabled_reason) == ("disabled", "failing for 5 days")
    assert dispatchers.disabled.calls == [(down, "disabled", "failing for 5 days")]


def test_dead_after_the_schedule_then_redelivered_by_hand(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    down, _ = add_endpoint(sessions, clock, receiver)
    put(sessions, clock, "m1", key="K", seq=1)
    put(sessions, clock, "m2", key="K", seq=2)
    receiver.standing["/hook"] = Reply(500)
    dispatcher = dispatchers()
    start = clock.now

    for _ in range(len(RETRY_DELAYS) + 1):
        assert dispatcher.run_once() == 1
        waiting = delivery(sessions, "m1")
        if waiting.state == DeliveryState.DEAD:
            break
        clock.now = waiting.next_attempt_at
    dead = delivery(sessions, "m1")
    assert (dead.state, dead.attempts, dead.last_error) == ("dead", 10, "HTTP 500")
    assert dead.dead_at == clock.now
    elapsed = clock.now - start
    assert 0.8 * sum(RETRY_DELAYS, timedelta()) <= elapsed <= 1.2 * sum(RETRY_DELAYS, timedelta())
    assert receiver.ids() == ["m1"] * 10
    assert endpoint(sessions, down).status == EndpointStatus.ACTIVE  # 3-4 days < 5

    del receiver.standing["/hook"]
    assert dispatcher.run_once() == 1  # the dead one no longer holds the key up
    assert receiver.ids()[-1] == "m2"

    with sessions.begin() as session:
        again = session.get(Delivery, dead.id)
        redeliver(session, again, now=clock())
        assert (again.state, again.attempts) == (DeliveryState.PENDING, 0)
    assert dispatcher.run_once() == 1
    redelivered = delivery(sessions, "m1")
    assert (redelivered.state, redelivered.attempts) == (DeliveryState.DELIVERED, 1)
    assert len(attempts(sessions, dead.id)) == 11  # the history is kept
    receiver.standing["/hook"] = Reply(500)
    put(sessions, clock, "m3", key="K", seq=3)
    dispatcher.run_once()
    with sessions() as session, pytest.raises(ValueError, match="still pending"):
        redeliver(session, session.get(Delivery, delivery(sessions, "m3").id), now=clock())


def test_recover_failed_resends_what_died_since_t_in_order(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    endpoint_id, _ = add_endpoint(sessions, clock, receiver)
    receiver.status = 400  # rejected: dead at once
    for seq in (1, 2, 3):
        put(sessions, clock, f"old{seq}", key="K", seq=seq)
    dispatcher = dispatchers()
    run_until_idle(dispatcher)
    clock.advance(hours=1)
    since = clock.now
    put(sessions, clock, "new1", key="L")
    run_until_idle(dispatcher)
    assert all(delivery(sessions, m).state == DeliveryState.DEAD
               for m in ("old1", "old2", "old3", "new1"))
    receiver.status = 204
    receiver.requests.clear()

    with sessions.begin() as session:
        target = session.get(Endpoint, endpoint_id)
        assert recover_failed(session, target, since=since, now=clock()) == 1
    run_until_idle(dispatcher)
    assert receiver.ids() == ["new1"]

    with sessions.begin() as session:
        target = session.get(Endpoint, endpoint_id)
        assert recover_failed(session, target, since=since - timedelta(hours=2),
                              now=clock()) == 3
    run_until_idle(dispatcher)
    assert receiver.ids() == ["new1", "old1", "old2", "old3"]
    assert delivery(sessions, "old3").state == DeliveryState.DELIVERED


def test_during_a_rotation_both_secrets_sign_for_24_hours_then_only_the_new_one(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    endpoint_id, old = add_endpoint(sessions, clock, receiver)
    with sessions.begin() as session:
        new = rotate_secret(session, session.get(Endpoint, endpoint_id), now=clock())
    assert new != old
    dispatcher = dispatchers()

    clock.advance(hours=23, minutes=59)
    put(sessions, clock, "during", key="A")
    dispatcher.run_once()
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        assert verify([secret], request.headers, request.body, now=clock()) == "during"

    clock.advance(minutes=1)
    put(sessions, clock, "after", key="B")
    dispatcher.run_once()
    request = receiver.requests[-1]
    assert request.headers["webhook-id"] == "after"
    assert verify([new], request.headers, request.body, now=clock()) == "after"
    with pytest.raises(SignatureRejected):
        verify([old], request.headers, request.body, now=clock())


def test_a_crashed_dispatchers_lease_expires_and_another_delivers_once(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    add_endpoint(sessions, clock, receiver)
    put(sessions, clock, "m1")
    crashed, survivor = dispatchers("w1"), dispatchers("w2")

    claimed = crashed.claim()
    assert len(claimed) == 1
    assert survivor.run_once() == 0  # leased
    clock.advance(seconds=61)
    assert survivor.run_once() == 1
    assert crashed.deliver(claimed) == 0  # the lease is no longer its own: nothing sent
    assert receiver.ids() == ["m1"]
    sent = delivery(sessions, "m1")
    assert (sent.state, sent.attempts) == (DeliveryState.DELIVERED, 1)


def test_a_late_result_after_the_lease_was_taken_over_is_not_recorded(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    add_endpoint(sessions, clock, receiver)
    put(sessions, clock, "m1")
    receiver.plan[("/hook", "m1")] = [Reply(204, hang=10)]  # the first request hangs
    slow, other = dispatchers("w1"), dispatchers("w2")
    counted: list[int] = []
    thread = threading.Thread(target=lambda: counted.append(slow.run_once()))
    thread.start()
    try:
        wait_for(lambda: len(receiver.requests) == 1)
        clock.advance(seconds=61)
        assert other.run_once() == 1
    finally:
        receiver.release.set()
        thread.join(timeout=10)
    assert counted == [1]
    assert receiver.ids() == ["m1", "m1"]  # at least once: the receiver dedupes on webhook-id
    assert len(set(receiver.ids())) == 1
    sent = delivery(sessions, "m1")
    assert (sent.state, sent.attempts, sent.lease_owner) == (DeliveryState.DELIVERED, 1, None)
    assert len(attempts(sessions, sent.id)) == 1  # only the lease holder's


def test_a_paused_endpoint_keeps_its_messages_until_reactivated(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    endpoint_id, _ = add_endpoint(sessions, clock, receiver)
    with sessions.begin() as session:
        update(session, session.get(Endpoint, endpoint_id), status="paused",
               allow_loopback_http=True, now=clock())
    put(sessions, clock, "m1", seq=1)
    put(sessions, clock, "m2", seq=2)
    dispatcher = dispatchers()
    clock.advance(hours=1)
    assert dispatcher.run_once() == 0
    assert receiver.requests == []

    with sessions.begin() as session:
        update(session, session.get(Endpoint, endpoint_id), status="active",
               allow_loopback_http=True, now=clock())
    assert run_until_idle(dispatcher) == 2
    assert receiver.ids() == ["m1", "m2"]


def test_a_message_that_cannot_be_rendered_is_dead_lettered(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    add_endpoint(sessions, clock, receiver)
    put(sessions, clock, "gone", seq=1)
    put(sessions, clock, "next", seq=2)
    dispatchers.render.unavailable.add("gone")
    dispatcher = dispatchers()

    assert dispatcher.run_once() == 1
    dead = delivery(sessions, "gone")
    assert (dead.state, dead.last_error) == (DeliveryState.DEAD, "message no longer available")
    assert dead.lease_owner is None
    assert attempts(sessions, dead.id) == []
    assert receiver.requests == []
    assert dispatcher.run_once() == 1  # the key is no longer held up
    assert receiver.ids() == ["next"]
