"""Fixtures for the webhook engine: a real local HTTP receiver, a fake DNS, databases, a clock.

The receiver is a threaded ``http.server`` on 127.0.0.1 that records what it gets and answers
as told (status, headers, body, or hanging; per path, per message, or a programmed sequence),
so deliveries are tested over real sockets. DNS is faked by patching ``socket.getaddrinfo``:
the names the tests use resolve as the test says, and nothing reaches a real resolver (unknown
names fail; numeric hosts resolve numerically).

Database tests run on SQLite and on PostgreSQL (``engine_url``): a fresh database per backend and
test session, emptied before each test. The clock is fake: tests advance it instead of sleeping.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tests.receiver import Receiver, Recorded, Reply, running_receiver  # noqa: F401 (re-exported)
from webhooks.models import Attempt, Delivery, Endpoint, metadata
from webhooks.sender import GuardedClient, guarded_client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as state:
        yield state


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


Answer = list[str] | Callable[[], list[str]]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, Answer]:
    """Names -> addresses (or a callable giving them, for answers that change)."""
    table: dict[str, Answer] = {}
    real = socket.getaddrinfo

    def getaddrinfo(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            entry = table[name]
            addresses = entry() if callable(entry) else entry
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port, 0, 0))
                if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
                for a in addresses
            ]
        return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


# -- databases ---------------------------------------------------------------------------------


def _postgres_admin_url() -> str | None:
    url = os.environ.get("HUB_TEST_POSTGRES_URL")
    if not url and os.environ.get("HUB_REQUIRE_POSTGRES"):
        pytest.fail("HUB_REQUIRE_POSTGRES is set but HUB_TEST_POSTGRES_URL is not")
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    """A database with the engine's tables: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("webhooks") / "webhooks.sqlite3"
        url = f"sqlite:///{path}"
        engine = create_engine(url)
        metadata.create_all(engine)
        engine.dispose()
        yield url
        return
    admin_url = _postgres_admin_url()
    if admin_url is None:
        pytest.skip("PostgreSQL tests need HUB_TEST_POSTGRES_URL (see scripts/test-postgres.sh)")
    name = f"webhooks_test_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _writers_take_turns(engine: Engine) -> None:
    """As the hub's SQLite engine does: one writing transaction at a time per process, on a
    non-reentrant lock, so code that writes in two sessions at once on one thread deadlocks
    here as it would in the hub."""
    turn = threading.Lock()

    @event.listens_for(engine, "before_cursor_execute")
    def _take(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not conn.info.get("turn") and statement.lstrip().upper().startswith(
            ("INSERT", "UPDATE", "DELETE", "REPLACE")
        ):
            if not turn.acquire(timeout=20):
                raise AssertionError("a writer waited 20 s for SQLite: nested writing sessions?")
            conn.info["turn"] = True

    @event.listens_for(engine, "checkin")
    @event.listens_for(engine, "invalidate")
    def _give(_dbapi: Any, record: Any, *_exc: Any) -> None:
        if record.info.pop("turn", False):
            turn.release()


@pytest.fixture
def engine(engine_url: str) -> Iterator[Engine]:
    """An engine on an emptied database, set up as the hub sets up its own."""
    if engine_url.startswith("sqlite"):
        engine = create_engine(
            engine_url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        _writers_take_turns(engine)
    else:
        engine = create_engine(engine_url, pool_size=10, max_overflow=10)
    with engine.begin() as connection:
        for table in (Attempt.__table__, Delivery.__table__, Endpoint.__table__):
            connection.execute(table.delete())
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# -- time ----------------------------------------------------------------------------------------


class FakeClock:
    """A clock tests move by hand (thread-safe enough: reads and writes of one attribute)."""

    def __init__(self, start: datetime | None = None) -> None:
        # Near the real time, so the reference library's timestamp check accepts signatures.
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self.now += delta if delta is not None else timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- dispatchers ---------------------------------------------------------------------------------


@pytest.fixture
def http_client() -> Iterator[GuardedClient]:
    with guarded_client(allow_loopback=True, timeout=2.0) as client:
        yield client


@pytest.fixture
def dispatchers(
    sessions: sessionmaker[Session], clock: FakeClock, http_client: GuardedClient
) -> Iterator[Any]:
    """A factory of dispatchers (``dispatchers("w2", concurrency=4)``) sharing ``.render``,
    ``.disabled`` (the on_disabled calls) and ``.results`` (the on_attempt calls)."""
    from .support import Disabled, Dispatchers, Renderer

    factory = Dispatchers(sessions, clock, http_client, Renderer(), Disabled())
    yield factory
    factory.close()
