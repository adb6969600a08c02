"""The scheduler of the scheduled checks (docs/design.md §6): APScheduler 3 in `hub worker` (and in
`hub run` for the embedded default), never in web workers.

There is one job, "run the checks", every `interval` seconds — never one job per referral or
consent: what is due is found through indexed due-at columns (`hub.followups.tick`), so the
scheduler keeps no state of its own and a restart loses nothing.  The job is `coalesce=True`,
`max_instances=1` and has no misfire limit: a slow pass, a suspended process or a long
downtime gives one more pass, never a pile of them.  The first pass runs at start, so a
scheduler that was down catches up at once.

Only one process runs the checks at a time (the leader):

- on PostgreSQL, the one holding a session-level advisory lock on a dedicated connection,
  kept open for as long as it leads.  The others stand by and try the lock at each tick, so
  they take over within one `interval` once the leader's connection closes: at once when the
  process dies (SIGKILL included, the kernel closes its socket), within the keepalive time
  (about 25 s) when the network silently drops it;
- on SQLite there is one process (`hub run`): it always leads.

Leadership avoids redundant work and contention; it is not what makes a check act once.  Each
check is exactly-once by itself (unique rows, SKIP LOCKED), so a moment with two leaders — a
partitioned leader that has not noticed yet — repeats nothing.

Catching up is bounded: each check handles at most one batch per call (`withdrawal.expire_due`:
500, oldest first, each batch its own short transaction).  A tick repeats the pass while it
still finds work, up to `catch_up_rounds` passes, so a day of backlog is cleared within a few
ticks, in batches, without a storm and without starving the rest of the database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from hub.db import utcnow
from hub.followups import tick
from hub.followups.staff_mails import DEFAULT_PUBLIC_URL

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 60.0
DEFAULT_CATCH_UP_ROUNDS = 10
JOB_ID = "hub-checks"
EXECUTOR = "hub-checks"

# The advisory lock of the scheduled checks: one signed 64-bit key, the same in every process
# (advisory locks belong to one database, so hubs on other databases of the cluster don't
# compete for it).  It spells "MAILLAGE".
LEADER_LOCK_KEY = 0x4D41_494C_4C41_4745

# TCP keepalive of the dedicated connection.  Client side (libpq): the leader notices a dead
# connection within ~25 s, even while idle, and stops leading.  Server side (GUCs of that
# session): PostgreSQL notices a vanished leader within ~25 s and releases the lock, instead
# of the kernel's default of two hours.  Loopback and Unix sockets need none of this.
KEEPALIVE_CONNECT_ARGS: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms: unacknowledged writes (our SELECT 1) give up too
    "connect_timeout": 10,
}
SERVER_KEEPALIVE_OPTIONS = ("-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 "
                            "-c tcp_keepalives_count=3")

# Quiet APScheduler's two INFO lines per tick ("Running job ...", "... executed successfully");
# its warnings (a skipped or missed run) and errors still show.
logging.getLogger(f"apscheduler.executors.{EXECUTOR}").setLevel(logging.WARNING)


class Leadership:
    """Who runs the checks.  `ensure()` is called at each tick; it answers whether this process
    leads now, acquiring leadership if it can.  `release()` gives it up for good."""

    def __init__(self, on_change: Callable[[bool], None] | None = None) -> None:
        self.on_change = on_change
        self._leading: bool | None = None  # None: not known yet

    @property
    def is_leader(self) -> bool:
        return bool(self._leading)

    def ensure(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        self._set(False, shutting_down=True)

    def _set(self, leading: bool, shutting_down: bool = False) -> None:
        before, self._leading = self._leading, leading
        if before == leading:
            return
        if leading:
            log.info("this process now leads the scheduled checks")
        elif shutting_down:
            if before:
                log.info("this process stops leading the scheduled checks (shutting down)")
        elif before:
            log.warning("this process no longer leads the scheduled checks")
        else:
            log.info("this process stands by for the scheduled checks (another one leads, "
                     "or the database is out of reach)")
        if self.on_change is not None:
            try:
                self.on_change(leading)
            except Exception:
                log.exception("leadership callback failed")


class SoleLeadership(Leadership):
    """SQLite: one process (`hub run`), which always leads."""

    def ensure(self) -> bool:
        self._set(True)
        return True


class AdvisoryLockLeadership(Leadership):
    """PostgreSQL: the process holding `pg_try_advisory_lock(LEADER_LOCK_KEY)` leads.

    The lock is session-level, on a connection of its own (outside the pool, autocommit so it
    is never idle in a transaction), kept open as long as this process leads: PostgreSQL
    releases the lock when that connection closes, whatever ends it.
    """

    def __init__(self, engine: Engine, *, key: int = LEADER_LOCK_KEY,
                 on_change: Callable[[bool], None] | None = None) -> None:
        super().__init__(on_change)
        self.key = key
        url = engine.url
        extra = url.query.get("options")
        options = " ".join(o for o in (extra if isinstance(extra, str) else None,
                                       SERVER_KEEPALIVE_OPTIONS) if o)
        self.application_name = f"maillage-checks:{socket.gethostname()}:{os.getpid()}"
        self._engine = create_engine(
            url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
            connect_args={**KEEPALIVE_CONNECT_ARGS, "options": options,
                          "application_name": self.application_name[:63]},
        )
        self._connection: Connection | None = None
        self._lock = threading.Lock()
        self._released = False

    def ensure(self) -> bool:
        with self._lock:
            if self._released:
                return False
            if self._leading and self._alive():
                return True
            # Not leading, or the leader's connection just died (the lock went with it, or
            # goes as soon as the server notices): try to take it, on a fresh connection if
            # need be.
            try:
                if self._connection is None:
                    self._connection = self._engine.connect()
                acquired = bool(self._connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())
            except Exception as error:
                log.warning("cannot reach the database to lead the scheduled checks: %s",
                            error)
                self._drop()
                acquired = False
            self._set(acquired)
            return acquired

    def _alive(self) -> bool:
        """The leader's check at each tick: is its connection, and so its lock, still there?"""
        assert self._connection is not None
        try:
            self._connection.exec_driver_sql("SELECT 1")
            return True
        except Exception as error:
            log.warning("the scheduled checks' leader lost its database connection: %s", error)
            self._drop()
            self._set(False)
            return False

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except Exception:
                log.debug("closing a dead connection failed", exc_info=True)

    def release(self) -> None:
        """Stop leading for good: closing the connection releases the lock."""
        with self._lock:
            self._released = True
            connection, self._connection = self._connection, None
            if connection is not None:
                try:
                    if self._leading:  # at once: the server may close the session later
                        connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                           {"key": self.key})
                    connection.close()
                except Exception:
                    log.debug("closing the leader's connection failed", exc_info=True)
            self._set(False, shutting_down=True)
            self._engine.dispose()


def leadership_for(engine: Engine, on_change: Callable[[bool], None] | None = None
                   ) -> Leadership:
    if engine.dialect.name == "postgresql":
        return AdvisoryLockLeadership(engine, on_change=on_change)
    return SoleLeadership(on_change)


class LockHolder(NamedTuple):
    pid: int  # the backend's pid on the database server
    application_name: str  # "maillage-checks:<host>:<pid of the leading process>"


def lock_holder(connection: Connection, key: int = LEADER_LOCK_KEY) -> LockHolder | None:
    """PostgreSQL: the backend holding the leader lock, if any — for tests and operators."""
    # A bigint key shows in pg_locks as classid (high 32 bits), objid (low 32 bits), objsubid 1.
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    row = connection.execute(text(
        "SELECT l.pid, a.application_name FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.classid::bigint = :high AND l.objid::bigint = :low"
    ), {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF}).first()
    return None if row is None else LockHolder(row.pid, row.application_name)


class CheckScheduler:
    """Runs a tick of the checks (`hub.followups.tick.run_tick`) every `interval` seconds in the
    process that leads.

    `clock` (returning an aware UTC datetime) is the "now" handed to the checks; the timer
    itself runs on the real clock.  `public_url` is where people reach the hub
    (HUB_PUBLIC_URL): the links of the checks' mails start with it.
    `on_leadership_change(leading)` is called on each change.
    """

    def __init__(self, engine: Engine, sessions: Callable[[], Session], *,
                 clock: Callable[[], datetime] = utcnow,
                 interval: float = DEFAULT_INTERVAL_SECONDS,
                 catch_up_rounds: int = DEFAULT_CATCH_UP_ROUNDS,
                 public_url: str = DEFAULT_PUBLIC_URL,
                 leadership: Leadership | None = None,
                 on_leadership_change: Callable[[bool], None] | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        if catch_up_rounds < 1:
            raise ValueError("catch_up_rounds must be at least 1")
        self.sessions = sessions
        self.clock = clock
        self.interval = interval
        self.catch_up_rounds = catch_up_rounds
        self.public_url = public_url
        self.leadership = leadership or leadership_for(engine, on_leadership_change)
        self.passes = 0  # passes of the firing checks made by this process
        self.last_handled: dict[str, int] | None = None  # what the last tick handled, by check
        self._stopping = threading.Event()
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={EXECUTOR: ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._scheduler.add_listener(
            self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    @classmethod
    def for_app(cls, app: Flask, **options: Any) -> CheckScheduler:
        """The scheduler of `app`'s database, its mails linking to the app's HUB_PUBLIC_URL."""
        engine, sessions = app.extensions["hub_db"]
        options.setdefault("public_url", app.config["HUB_SETTINGS"].public_url)
        return cls(engine, sessions, **options)

    @property
    def is_leader(self) -> bool:
        return self.leadership.is_leader

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        self._stopping.clear()
        self._scheduler.add_job(
            self.tick, IntervalTrigger(seconds=self.interval, timezone=UTC),
            id=JOB_ID, name="run the scheduled checks", executor=EXECUTOR,
            coalesce=True, max_instances=1, misfire_grace_time=None,
            next_run_time=datetime.now(UTC),  # a first pass at once: catch up after downtime
            replace_existing=True,
        )
        self._scheduler.start()
        log.info("scheduled checks every %s s", self.interval)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the timer (waiting for a pass in progress when `wait`), then give up leadership,
        which on PostgreSQL closes the connection holding the lock."""
        self._stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        self.leadership.release()

    def tick(self) -> dict[str, int] | None:
        """The job: if this process leads, run the checks (again while they find work, up to
        `catch_up_rounds` passes), then the digests (`hub.followups.tick.run_tick`); returns the
        total handled per check, None when standing by."""
        if self._stopping.is_set() or not self.leadership.ensure():
            return None

        def counted() -> None:
            self.passes += 1

        handled = tick.run_tick(self.sessions, self.clock, rounds=self.catch_up_rounds,
                                stopping=self._stopping.is_set, on_pass=counted,
                                public_url=self.public_url)
        total = {name: max(count, 0) for name, count in handled.items()}
        self.last_handled = total
        if any(total.values()):
            log.info("scheduled checks", extra={"handled": total})
        return total

    def _on_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            log.info("the previous pass of the scheduled checks is still running; "
                     "this tick is skipped")
        elif event.code == EVENT_JOB_MISSED:
            log.warning("a pass of the scheduled checks was missed; the next one catches up")
        elif event.code == EVENT_JOB_ERROR:
            log.error("a pass of the scheduled checks failed; the next one tries again: %r",
                      getattr(event, "exception", None))
