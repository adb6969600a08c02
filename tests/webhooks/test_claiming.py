"""Claiming: concurrent dispatchers never share a delivery; the query uses the indexes."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from webhooks.claiming import candidates, claim, claim_loaded
from webhooks.models import Delivery
from webhooks.queue import Message, enqueue_many

from .conftest import FakeClock, Receiver
from .support import add_endpoint


def _fill(sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver,
          endpoints: int, keys: int) -> list[uuid.UUID]:
    ids = [add_endpoint(sessions, clock, receiver, f"/e{n}")[0] for n in range(endpoints)]
    with sessions.begin() as session:
        enqueue_many(
            session, [Message(f"m{k}", "referral.created", f"k{k}", 1) for k in range(keys)],
            clock(),
        )
    return ids


def _claim(session: Session, clock: FakeClock, worker: str, **options: Any) -> list[int]:
    settings: dict[str, Any] = {"limit": 100, "per_endpoint": 1000}
    settings.update(options)
    return claim(session, worker_id=worker, now=clock(),
                 lease_until=clock() + timedelta(seconds=60), **settings)


@pytest.mark.parametrize("engine_url", ["postgresql"], indirect=True)  # one runs on SQLite
def test_concurrent_dispatchers_never_claim_the_same_delivery(
    engine_url: str, sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    _fill(sessions, clock, receiver, endpoints=4, keys=120)  # 480 claimable deliveries
    workers = 6
    claimed: dict[str, list[int]] = {f"w{n}": [] for n in range(workers)}
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(worker: str) -> None:
        try:
            start.wait()
            while True:
                with sessions.begin() as session:
                    got = _claim(session, clock, worker, limit=25, per_endpoint=10)
                if not got:
                    return
                claimed[worker].extend(got)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    everything = [i for got in claimed.values() for i in got]
    assert len(everything) == 480
    assert len(set(everything)) == 480  # nobody claimed a delivery twice
    assert sum(1 for got in claimed.values() if got) >= 2  # they did run side by side
    with sessions() as session:
        owners = dict(session.execute(select(Delivery.id, Delivery.lease_owner)).all())
    for worker, got in claimed.items():
        assert all(owners[i] == worker for i in got)


def test_claims_respect_leases_order_and_the_per_endpoint_cap(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    first, second = _fill(sessions, clock, receiver, endpoints=2, keys=10)
    with sessions.begin() as session:
        enqueue_many(session, [Message("later", "referral.created", "k0", 2)], clock())

    with sessions.begin() as session:
        capped = _claim(session, clock, "w1", per_endpoint=3)
        by_endpoint = {e: sum(1 for i in capped if session.get(Delivery, i).endpoint_id == e)
                       for e in (first, second)}
    assert by_endpoint == {first: 3, second: 3}
    with sessions.begin() as session:  # the first endpoint is busy: only the second one's
        more = _claim(session, clock, "w1", per_endpoint=3, busy={first: 3})
        assert {session.get(Delivery, i).endpoint_id for i in more} == {second}
    with sessions.begin() as session:
        rest = _claim(session, clock, "w2")
        claimed = set(capped) | set(more) | set(rest)
        assert len(claimed) == len(capped) + len(more) + len(rest) == 20
        # "later" (k0, sequence 2) waits while k0's first message is pending.
        assert not {d.message_id for d in session.scalars(
            select(Delivery).where(Delivery.id.in_(claimed)))} & {"later"}
    with sessions.begin() as session:
        assert _claim(session, clock, "w3") == []  # all leased
    clock.advance(seconds=61)
    with sessions.begin() as session:
        assert len(_claim(session, clock, "w3")) == 20  # leases expired: claimed again


def _plan(engine: Engine, query: Any, prefix: str, setup: list[str]) -> str:
    with engine.connect() as connection:
        for statement in setup:
            connection.execute(text(statement))

        @event.listens_for(connection, "before_cursor_execute", retval=True)
        def _explain(_conn: Any, _cursor: Any, statement: str, parameters: Any,
                     *_rest: Any) -> tuple[str, Any]:
            return prefix + statement, parameters

        plan = "\n".join(str(row[-1]) for row in connection.execute(query))
        connection.rollback()
        return plan


def test_the_claim_query_uses_the_indexes(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    _fill(sessions, clock, receiver, endpoints=5, keys=400)
    with sessions.begin() as session:
        session.execute(update(Delivery).where(Delivery.id % 10 != 0).values(state="delivered"))
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE webhook_deliveries, webhook_endpoints"))
    query = candidates(clock(), 100, skip_locked=postgres)
    # On a table this small PostgreSQL may rightly prefer to sort or hash a few rows; with those
    # plans ruled out, what is left shows whether the indexes *can* serve the query (the plan
    # PostgreSQL picks once the queue is large).
    no_shortcuts = [f"SET LOCAL enable_{kind} = off"
                    for kind in ("seqscan", "bitmapscan", "sort", "hashjoin", "mergejoin")]
    plan = (
        _plan(engine, query, "EXPLAIN ", no_shortcuts)
        if postgres
        else _plan(engine, query, "EXPLAIN QUERY PLAN ", [])
    )
    assert "ix_webhook_deliveries_due" in plan, plan
    assert "ix_webhook_deliveries_order" in plan, plan
    if postgres:
        assert "LockRows" in plan
        assert "Seq Scan" not in plan, plan
        assert "Sort" not in plan, plan  # the due index gives the order
    else:
        assert "TEMP B-TREE" not in plan, plan


def test_claim_loaded_returns_the_leased_rows_with_their_endpoints(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    endpoint_ids = _fill(sessions, clock, receiver, endpoints=3, keys=4)  # 12 deliveries
    with sessions.begin() as session:
        busy = {endpoint_ids[0]: 1}
        rows = claim_loaded(session, worker_id="w1", now=clock(),
                            lease_until=clock() + timedelta(seconds=60), limit=100,
                            per_endpoint=3, busy=busy)
        got = [(d.id, d.endpoint_id, e.id, e.url, d.lease_owner) for d, e in rows]
    per_endpoint = {e: sum(1 for _, de, _, _, _ in got if de == e) for e in endpoint_ids}
    assert per_endpoint == {endpoint_ids[0]: 2, endpoint_ids[1]: 3, endpoint_ids[2]: 3}
    assert [g[0] for g in got] == sorted(g[0] for g in got)
    assert all(de == e and owner == "w1" for _, de, e, _, owner in got)
    assert all(url.startswith(receiver.url.rsplit("/", 1)[0]) for *_, url, _ in got)
    with sessions() as session:
        owners = dict(session.execute(select(Delivery.id, Delivery.lease_owner)).all())
    assert {i for i, owner in owners.items() if owner == "w1"} == {g[0] for g in got}
    with sessions.begin() as session:  # what is leased is not claimed again
        again = claim_loaded(session, worker_id="w2", now=clock(),
                             lease_until=clock() + timedelta(seconds=60), limit=100,
                             per_endpoint=100)
    assert {d.id for d, _ in again}.isdisjoint(g[0] for g in got)
    assert len(again) == 12 - len(got)
