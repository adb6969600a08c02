"""The scheduler of the scheduled checks (`hub.followups.scheduler`).

On PostgreSQL, with real worker processes (`tests/e2e/scheduler_process.py`, the scheduler
alone, ticking every second): exactly one leads, a SIGKILL of the leader hands over to the
standby within seconds, never two leaders, and every consent that expires — a day ago or
while the leader is being killed — gets exactly one `consent.expired` event.  In process: the
advisory-lock leadership step by step, and on SQLite the timer, the injected clock, shutdown
and the bounded catch-up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from hub.accounts.callers import Caller
from hub.consent import consents as consents
from hub.consent.consents import ConsentEnding
from hub.db import db, utcnow
from hub.events.store import Event
from hub.followups import tick as checks
from hub.followups.scheduler import AdvisoryLockLeadership, CheckScheduler, lock_holder
from tests.helpers import Network

ROOT = Path(__file__).resolve().parents[2]
TICK = 1.0  # the worker processes' interval, in seconds

on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
on_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def wait_for(condition: Callable[[], object], timeout: float, what: str,
             every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


# --- real worker processes --------------------------------------------------------------------

class SchedulerProcess:
    """`python -m tests.e2e.scheduler_process`, its leadership changes read from its stdout."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.scheduler_process", str(TICK)], cwd=ROOT,
            env=env, stdout=subprocess.PIPE, stderr=self._log_file, text=True)
        self.transitions: list[tuple[float, str]] = []  # (unix time, "leader" | "standby")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            at, state, _pid = line.split()
            self.transitions.append((float(at), state))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def application_name(self) -> str:
        return f"maillage-checks:{socket.gethostname()}:{self.pid}"

    @property
    def state(self) -> str | None:
        return self.transitions[-1][1] if self.transitions else None

    def kill(self) -> float:
        killed_at = time.time()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        return killed_at

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._reader.join(timeout=5)
        self._log_file.close()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextmanager
def two_workers(app: Flask, tmp_path: Path) -> Iterator[tuple[SchedulerProcess,
                                                                SchedulerProcess]]:
    settings = app.config["HUB_SETTINGS"]
    env = {**os.environ, "HUB_DATABASE_URL": settings.database_url, "HUB_ENV": "test",
           "HUB_SECRET_KEY": settings.secret_key, "HUB_LOG_LEVEL": "INFO"}
    first = SchedulerProcess(env, tmp_path / "first.log")
    second = SchedulerProcess(env, tmp_path / "second.log")
    try:
        wait_for(lambda: first.state and second.state, 30, "both workers to start")
        yield first, second
    finally:
        first.stop()
        second.stop()


def holder(app: Flask) -> str | None:
    with app.app_context(), db.engine.connect() as connection:
        found = lock_holder(connection)
        return found.application_name if found else None


def split(pair: tuple[SchedulerProcess, SchedulerProcess]
          ) -> tuple[SchedulerProcess, SchedulerProcess]:
    leaders = [worker for worker in pair if worker.state == "leader"]
    assert len(leaders) == 1, [worker.transitions for worker in pair]
    (leader,) = leaders
    return leader, next(worker for worker in pair if worker is not leader)


@on_postgresql
def test_one_worker_leads_and_the_standby_takes_over_when_it_is_killed(
        app: Flask, tmp_path: Path) -> None:
    with two_workers(app, tmp_path) as pair:
        leader, standby = split(pair)
        assert holder(app) == leader.application_name
        # The standby keeps trying at each tick and keeps failing while the leader lives.
        time.sleep(2 * TICK)
        assert standby.transitions == [standby.transitions[0]]
        assert standby.state == "standby"
        assert leader.transitions == [leader.transitions[0]]

        killed_at = leader.kill()
        wait_for(lambda: standby.state == "leader", 10 * TICK, "the standby to take over")
        took_over_at = standby.transitions[-1][0]
        assert killed_at < took_over_at < killed_at + 3 * TICK + 1.0, "slow takeover"
        assert holder(app) == standby.application_name
        # Never two leaders: the standby led only after the leader died, which never let go.
        assert [state for _, state in standby.transitions] == ["standby", "leader"]
        assert [state for _, state in leader.transitions] == ["leader"]
        assert leader.transitions[0][0] < killed_at

    assert standby.state == "standby"  # stopped (SIGTERM): it gave the lock back
    assert standby.process.returncode == 0, standby.log_tail()


@on_postgresql
def test_every_due_consent_expires_exactly_once_across_a_killed_leader(
        app: Flask, network: Network, tmp_path: Path) -> None:
    partner = network.partner()
    caller = Caller(uuid.UUID(partner.organization_id), f"client:{partner.client_id}")
    participants = [uuid.UUID(partner.register_participant()["id"]) for _ in range(16)]

    with two_workers(app, tmp_path) as pair:
        leader, standby = split(pair)
        start = utcnow()
        with app.app_context(), db.job_session() as session:
            # Due since yesterday, as if the scheduler had been down for a day...
            overdue = [consents.grant(
                session, caller, participant, purpose="referral_sharing", evidence="written",
                network_wide=True, now=start - timedelta(days=2),
                expires_at=start - timedelta(days=1, seconds=k)).id
                for k, participant in enumerate(participants[:8])]
            # ...and falling due one after the other while the leader is killed.
            upcoming = [consents.grant(
                session, caller, participant, purpose="referral_sharing", evidence="written",
                network_wide=True, now=start,
                expires_at=start + timedelta(seconds=1.5 + 0.5 * k)).id
                for k, participant in enumerate(participants[8:])]
        every = overdue + upcoming

        def ended(ids: list[uuid.UUID]) -> int:
            with app.app_context(), db.job_session() as session:
                return session.scalar(select(func.count()).select_from(ConsentEnding).where(
                    ConsentEnding.consent_id.in_(ids))) or 0

        wait_for(lambda: ended(overdue) == len(overdue), 10 * TICK, "the overdue consents")
        assert ended(upcoming) < len(upcoming), "too late: nothing left for the standby"
        killed_at = leader.kill()
        wait_for(lambda: ended(every) == len(every), 15 * TICK, "every consent to expire")
        time.sleep(2 * TICK)  # a couple more ticks: nothing more happens
        assert standby.state == "leader"

    with app.app_context(), db.job_session() as session:
        subjects = [f"consents/{consent_id}" for consent_id in every]
        counted = dict(session.execute(
            select(Event.subject, func.count()).where(
                Event.subject.in_(subjects), Event.type == "consent.expired")
            .group_by(Event.subject)).all())
        endings = list(session.scalars(select(ConsentEnding).where(
            ConsentEnding.consent_id.in_(every))))
    assert counted == dict.fromkeys(subjects, 1)
    assert {ending.kind for ending in endings} == {"expired"}
    # The standby, once leader, did part of the work.
    assert any(ending.at.timestamp() > killed_at for ending in endings)
    for worker in pair:  # never failed (a second expiry would have, on its unique row)
        log = worker.log.read_text(errors="replace")
        assert "scheduled check consent_expiry failed" not in log, worker.log_tail()


# --- in process: the advisory lock, step by step ----------------------------------------------

@on_postgresql
def test_the_advisory_lock_goes_to_one_and_comes_back_after_a_dead_connection(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "CHECKS", {})  # leadership only: no check acts
    engine = app.extensions["hub_db"][0]
    changes: dict[str, list[bool]] = {"a": [], "b": []}
    a = CheckScheduler.for_app(app, leadership=AdvisoryLockLeadership(
        engine, on_change=changes["a"].append))
    b = CheckScheduler.for_app(app, leadership=AdvisoryLockLeadership(
        engine, on_change=changes["b"].append))
    try:
        assert a.tick() == {} and a.is_leader
        assert b.tick() is None and not b.is_leader
        assert a.tick() == {} and b.tick() is None  # a keeps it; b keeps trying

        with engine.connect() as connection:  # a's connection dies under it
            found = lock_holder(connection)
            assert found is not None
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": found.pid})
        wait_for(lambda: b.tick() is not None, 5, "the lock to be free")
        assert b.is_leader
        assert a.tick() is None and not a.is_leader  # noticed, tried again, stands by

        b.shutdown()  # closes b's connection: the lock is free at once
        assert not b.is_leader
        assert a.tick() == {} and a.is_leader
    finally:
        a.shutdown()
        b.shutdown()
    assert changes == {"a": [True, False, True, False], "b": [False, True, False]}


# --- in process, SQLite: the timer, the clock, the catch-up -----------------------------------

@on_sqlite
def test_on_sqlite_it_leads_at_once_and_passes_the_injected_clock(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[datetime] = []

    def probe(_session: object, now: datetime) -> int:
        seen.append(now)
        return 0

    monkeypatch.setattr(checks, "CHECKS", {"probe": probe})
    moment = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    scheduler = CheckScheduler.for_app(app, clock=lambda: moment, interval=3600)
    assert not scheduler.is_leader
    scheduler.start()
    try:
        wait_for(lambda: seen, 5, "the first pass, at start")
        assert scheduler.is_leader and scheduler.running
        assert seen == [moment]
        assert scheduler.last_handled == {"probe": 0}
    finally:
        scheduler.shutdown()
    assert not scheduler.running and not scheduler.is_leader


@on_sqlite
def test_after_shutdown_no_pass_runs(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "CHECKS", {"nothing": lambda _session, _now: 0})
    scheduler = CheckScheduler.for_app(app, interval=0.05)
    scheduler.start()
    try:
        wait_for(lambda: scheduler.passes >= 3, 5, "a few ticks")
    finally:
        scheduler.shutdown(wait=True)
    passes = scheduler.passes
    time.sleep(0.3)
    assert scheduler.passes == passes
    scheduler.shutdown()  # twice is fine


@on_sqlite
def test_a_tick_catches_up_in_bounded_batches(app: Flask,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    backlog = {"left": 25}

    def drain(_session: object, _now: datetime) -> int:  # a check with batches of 10
        handled = min(10, backlog["left"])
        backlog["left"] -= handled
        return handled

    monkeypatch.setattr(checks, "CHECKS", {"drain": drain})
    scheduler = CheckScheduler.for_app(app, catch_up_rounds=10)
    assert scheduler.tick() == {"drain": 25}
    assert scheduler.passes == 4  # 10, 10, 5, then one finding nothing

    monkeypatch.setattr(checks, "CHECKS", {"endless": lambda _session, _now: 1,
                                           "broken": lambda _session, _now: 1 // 0})
    capped = CheckScheduler.for_app(app, catch_up_rounds=3)
    assert capped.tick() == {"endless": 3, "broken": 0}  # a failing check counts nothing
    assert capped.passes == 3


@on_sqlite
def test_a_naive_clock_is_refused(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "CHECKS", {})
    scheduler = CheckScheduler.for_app(app, clock=lambda: datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        scheduler.tick()
