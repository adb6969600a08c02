"""A hung receiver must not hold up the others (real time here: the hang is what is measured)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from webhooks.models import Delivery, DeliveryState
from webhooks.queue import Message, enqueue_many
from webhooks.sender import GuardedClient, guarded_client

from .conftest import FakeClock, Receiver, Reply
from .support import add_endpoint, delivery, wait_for

HEALTHY = uuid.UUID("00000000-0000-4000-8000-00000000000a")
HUNG = uuid.UUID("00000000-0000-4000-8000-00000000000b")
# The client's timeout, standing in for the contract's 15 s: long enough that the bounds below
# hold on a loaded machine, where a pipeline needs well under a second and sequential batches
# (each waiting for its slowest request) would need several timeouts.
TIMEOUT = 3.0
ONCE_TIMEOUT = 2.0


@pytest.fixture
def short_client() -> Iterator[GuardedClient]:
    with guarded_client(allow_loopback=True, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
def once_client() -> Iterator[GuardedClient]:
    with guarded_client(allow_loopback=True, timeout=ONCE_TIMEOUT) as client:
        yield client


def _delivered(sessions: sessionmaker[Session], endpoint_ids: list[uuid.UUID]) -> int:
    with sessions() as session:
        return int(session.scalar(
            select(func.count()).select_from(Delivery).where(
                Delivery.endpoint_id.in_(endpoint_ids),
                Delivery.state == DeliveryState.DELIVERED.value,
            )
        ) or 0)


def _setup(sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver,
           *, healthy: int, hung_keys: int, per_key: int) -> list[uuid.UUID]:
    """``healthy`` endpoints with 2 keys of ``per_key`` messages each, and one hung endpoint
    with ``hung_keys`` keys; returns the healthy endpoints' ids."""
    ids = [add_endpoint(sessions, clock, receiver, f"/ok{n}", owner=HEALTHY)[0]
           for n in range(healthy)]
    add_endpoint(sessions, clock, receiver, "/hung", owner=HUNG)
    receiver.standing["/hung"] = Reply(204, hang=30)  # until the client gives up
    messages = [Message(f"h{k}", "referral.created", f"hk{k}", 1, frozenset({HUNG}))
                for k in range(hung_keys)]
    messages += [Message(f"{key}-{seq}", "referral.created", key, seq, frozenset({HEALTHY}))
                 for key in ("A", "B") for seq in range(1, per_key + 1)]
    with sessions.begin() as session:
        enqueue_many(session, messages, clock())
    return ids


def test_run_forever_keeps_healthy_endpoints_flowing_past_a_hung_one(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers,
    short_client: GuardedClient,
) -> None:
    # Ten hung keys against 8 threads: without the per-endpoint cap they could take them all.
    healthy = _setup(sessions, clock, receiver, healthy=5, hung_keys=10, per_key=4)
    dispatcher = dispatchers(client=short_client, concurrency=8)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run_forever, args=(stop,),
                              kwargs={"idle_sleep": 0.02})
    started = time.monotonic()
    thread.start()
    try:
        # 40 healthy deliveries, 4 in a row per key: each needs the previous one recorded.
        took = wait_for(lambda: _delivered(sessions, healthy) == 40, timeout=10)
        hung_requests = len(receiver.ids("/hung"))
    finally:
        stop.set()
        receiver.release.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    # Sequential batches would need 4 timeouts (12 s); a pipeline needs a few round trips.
    assert took < TIMEOUT * 2 / 3, f"healthy deliveries took {took:.2f} s"
    assert 1 <= hung_requests <= 2  # per_endpoint = concurrency // 4
    assert time.monotonic() - started < 8


def test_run_once_records_each_result_as_it_completes(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers,
    once_client: GuardedClient,
) -> None:
    healthy = _setup(sessions, clock, receiver, healthy=3, hung_keys=1, per_key=1)
    dispatcher = dispatchers(client=once_client)
    counted: list[int] = []
    thread = threading.Thread(target=lambda: counted.append(dispatcher.run_once()))
    thread.start()
    took = wait_for(lambda: _delivered(sessions, healthy) == 6, timeout=10)
    assert thread.is_alive()  # still waiting for the hung request...
    assert took < ONCE_TIMEOUT * 0.75  # ...but the others were recorded long before
    thread.join(timeout=10)
    assert counted == [7]
    hung = delivery(sessions, "h0")
    assert (hung.state, hung.attempts) == (DeliveryState.PENDING, 1)
    assert hung.last_error == f"timeout after {ONCE_TIMEOUT:g} s"


def test_run_forever_survives_errors_and_carries_on(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_endpoint(sessions, clock, receiver)
    with sessions.begin() as session:
        enqueue_many(session, [Message("m1", "referral.created", "k", 1)], clock())
    dispatchers.render.fail_next = 1
    dispatcher = dispatchers()
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run_forever, args=(stop,),
                              kwargs={"idle_sleep": 0.01, "error_sleep": 0.01})
    with caplog.at_level(logging.ERROR, logger="webhooks.dispatcher"):
        thread.start()
        try:
            wait_for(lambda: dispatchers.render.calls >= 1)
            time.sleep(0.1)
            assert receiver.requests == []  # still leased to the failed attempt
            clock.advance(seconds=61)  # the lease expires: claimed again
            wait_for(lambda: delivery(sessions, "m1").state == DeliveryState.DELIVERED)
        finally:
            stop.set()
            thread.join(timeout=10)
    assert not thread.is_alive()
    assert receiver.ids() == ["m1"]
    assert any("pausing" in r.getMessage() for r in caplog.records)
