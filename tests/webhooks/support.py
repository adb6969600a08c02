"""Helpers for the database-backed webhook tests: endpoints, messages, a render, dispatchers."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from webhooks.dispatcher import Dispatcher
from webhooks.endpoints import create_endpoint
from webhooks.models import Attempt, Delivery, Endpoint
from webhooks.queue import enqueue
from webhooks.sender import AttemptResult, GuardedClient

from .conftest import FakeClock, Receiver

OWNER = uuid.UUID("00000000-0000-4000-8000-000000000001")


def add_endpoint(
    sessions: sessionmaker[Session],
    clock: FakeClock,
    receiver: Receiver,
    path: str = "/hook",
    *,
    owner: uuid.UUID = OWNER,
    event_types: Iterable[str] = ("*",),
) -> tuple[uuid.UUID, str]:
    """A new endpoint at ``path`` of the local receiver; its id and secret."""
    with sessions.begin() as session:
        endpoint, secret = create_endpoint(
            session,
            owner_id=owner,
            url=receiver.url_for(path),
            event_types=list(event_types),
            allow_loopback_http=True,
            now=clock(),
        )
        return endpoint.id, secret


def put(
    sessions: sessionmaker[Session],
    clock: FakeClock,
    message_id: str,
    *,
    key: str = "key",
    seq: int = 1,
    event_type: str = "referral.created",
    owners: Iterable[uuid.UUID] | None = None,
) -> int:
    """Enqueue one message, committed; how many deliveries it made."""
    with sessions.begin() as session:
        return enqueue(
            session,
            message_id=message_id,
            event_type=event_type,
            ordering_key=key,
            sequence=seq,
            owner_ids=owners,
            now=clock(),
        )


def delivery(
    sessions: sessionmaker[Session], message_id: str, endpoint_id: uuid.UUID | None = None
) -> Delivery:
    with sessions() as session:
        query = select(Delivery).where(Delivery.message_id == message_id)
        if endpoint_id is not None:
            query = query.where(Delivery.endpoint_id == endpoint_id)
        return session.scalars(query).one()


def endpoint(sessions: sessionmaker[Session], endpoint_id: uuid.UUID) -> Endpoint:
    with sessions() as session:
        found = session.get(Endpoint, endpoint_id)
        assert found is not None
        return found


def attempts(sessions: sessionmaker[Session], delivery_id: int) -> list[Attempt]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.id)
            )
        )


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def body_for(message_id: str) -> bytes:
    return json.dumps({"type": "referral.created", "id": message_id}).encode()


@dataclass
class Renderer:
    """Renders ``{"type", "id"}`` bodies, except for message ids listed in ``unavailable``."""

    unavailable: set[str] = field(default_factory=set)
    calls: int = 0
    fail_next: int = 0  # raise on the next n calls

    def __call__(self, session: Session, deliveries: list[Delivery]) -> dict[int, bytes | None]:
        self.calls += 1
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("render failed (test)")
        return {
            d.id: None if d.message_id in self.unavailable else body_for(d.message_id)
            for d in deliveries
        }


@dataclass
class Disabled:
    """Records ``on_disabled`` calls."""

    calls: list[tuple[uuid.UUID, str, str]] = field(default_factory=list)
    fail: bool = False

    def __call__(self, session: Session, endpoint: Endpoint, reason: str) -> None:
        self.calls.append((endpoint.id, endpoint.status, reason))
        if self.fail:
            raise RuntimeError("notification failed (test)")


@dataclass
class Dispatchers:
    """Builds dispatchers on the test's database, clock and receiver; closes them at the end."""

    sessions: sessionmaker[Session]
    clock: FakeClock
    client: GuardedClient
    render: Renderer
    disabled: Disabled
    made: list[Dispatcher] = field(default_factory=list)
    results: list[AttemptResult] = field(default_factory=list)

    def __call__(self, worker_id: str = "w1", **options: object) -> Dispatcher:
        settings: dict[str, object] = {
            "render": self.render,
            "client": self.client,
            "clock": self.clock,
            "worker_id": worker_id,
            "rng": random.Random(42),
            "on_disabled": self.disabled,
            "on_attempt": self.results.append,
            "lease": timedelta(seconds=60),
        }
        settings.update(options)
        dispatcher = Dispatcher(self.sessions, **settings)  # type: ignore[arg-type]
        self.made.append(dispatcher)
        return dispatcher

    def close(self) -> None:
        for dispatcher in self.made:
            dispatcher.close()


def run_until_idle(dispatcher: Dispatcher, rounds: int = 50) -> int:
    """``run_once`` until nothing is due (the clock does not move); total claimed."""
    total = 0
    for _ in range(rounds):
        claimed = dispatcher.run_once()
        if not claimed:
            return total
        total += claimed
    raise AssertionError(f"still busy after {rounds} rounds")


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Poll ``condition`` until true; the seconds it took (fails after ``timeout``)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - started


def collapse(ids: list[str]) -> list[str]:
    """Consecutive duplicates (retries of one message) folded into one."""
    return [x for i, x in enumerate(ids) if i == 0 or ids[i - 1] != x]
