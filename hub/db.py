"""Database engine, sessions and the declarative base.

One session per web request (opened lazily, committed once by the request's end hook) and one
per background job (`Database.job_session`).  Use cases flush but never commit: the caller
decides when the unit of work ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from flask import Flask, current_app, g
from sqlalchemy import DateTime, MetaData, Table, create_engine, event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

# Deterministic constraint names, so that Alembic migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no time zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements (a plain executemany, not the ORM's bulk insert;
    statements built once).  The declarative base types `__table__` as any FromClause; a
    class mapped by `__tablename__`, as every model here is, has a Table there."""
    return cast(Table, model.__table__)


ModelT = TypeVar("ModelT", bound="Base")


def locked_row(session: Session, model: type[ModelT], row_id: Any) -> ModelT | None:
    """The row of `model` whose primary key is `row_id` (None when there is none), locked
    until the transaction ends and read as it is now: edits of one row take turns.
    PostgreSQL locks the row; SQLite has one writer at a time, so a write that changes nothing
    takes the writer's turn (and begins the transaction) before the row is read."""
    table = table_of(model)
    (key,) = table.primary_key.columns
    statement = select(model).where(key == row_id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    else:
        column = next(c for c in table.columns if not c.primary_key)
        session.execute(update(table).where(key == row_id).values({column.name: column}))
    return session.scalars(statement.execution_options(populate_existing=True)).one_or_none()


MAX_ID = 2**63 - 1  # the largest integer id a database column holds (BIGINT)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime | None, timespec: str = "auto") -> str | None:
    """A moment as the hub writes it in JSON: ISO 8601 in UTC with a trailing Z, everywhere."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine for `url`, with SQLite set up for a multi-threaded server (WAL, FKs, waits)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=pool_size
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        _writers_take_turns(engine)
        return engine
    # No pre-ping: it would cost a round trip per request. Connections that the server closed
    # are recycled, and a connection found dead is dropped with the whole pool.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


WRITING_STATEMENTS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _writers_take_turns(engine: Engine) -> None:
    """SQLite has one writer at a time; left to itself, a waiting writer sleeps and polls, which
    made tail latency of concurrent writes reach a second.  Writers of this process take turns
    on a lock instead: taken at a transaction's first write, handed over as soon as its
    connection goes back to the pool (after commit or rollback).  Reads stay parallel (WAL)."""
    turn = threading.Lock()

    @event.listens_for(engine, "before_cursor_execute")
    def _take_turn(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        info = conn.info  # belongs to the pooled DBAPI connection, seen again at checkin
        if not info.get("holds_turn") and statement.lstrip().upper().startswith(
            WRITING_STATEMENTS
        ):
            turn.acquire()
            info["holds_turn"] = True

    @event.listens_for(engine, "checkin")
    @event.listens_for(engine, "invalidate")
    def _end_turn(_dbapi_connection: Any, record: Any, *_exception: Any) -> None:
        if record.info.pop("holds_turn", False):
            turn.release()


class Database:
    """Flask extension handing out sessions; each app keeps its own engine in
    `app.extensions`, so several apps (SQLite and PostgreSQL in one test run) live side by side."""

    def init_app(self, app: Flask) -> None:
        settings = app.config["HUB_SETTINGS"]
        engine = make_engine(settings.database_url, settings.db_pool_size)
        app.extensions["hub_db"] = (engine, sessionmaker(engine, expire_on_commit=False))

        @app.teardown_appcontext
        def _close_session(_exc: BaseException | None) -> None:
            session = g.pop("db_session", None)
            if session is not None:
                session.close()  # rolls back anything not committed

    @property
    def engine(self) -> Engine:
        return current_app.extensions["hub_db"][0]

    @property
    def session(self) -> Session:
        """The session of the current request or job, opened on first use."""
        session = g.get("db_session")
        if session is None:
            session = g.db_session = current_app.extensions["hub_db"][1]()
        return session

    @contextmanager
    def job_session(self) -> Iterator[Session]:
        """A session for one background job or CLI command: commit on success, else roll back."""
        with current_app.extensions["hub_db"][1]() as session, session.begin():
            yield session


db = Database()


# What a transaction read and may reuse until it ends (consent answers, open legs...), kept in
# `session.info` under these keys; each module names its keys with `forget_with_the_transaction`.
_TRANSACTION_KEYS: set[str] = set()


def forget_with_the_transaction(*keys: str) -> None:
    """Drop `session.info[key]` for each key when the transaction ends or rolls back: what it
    read holds no longer once another transaction may have changed it."""
    _TRANSACTION_KEYS.update(keys)


def _forget(session: Session) -> None:
    for key in _TRANSACTION_KEYS:
        session.info.pop(key, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_the_end(session: Session, transaction: object) -> None:
    if getattr(transaction, "parent", None) is None:  # the transaction, not a savepoint in it
        _forget(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget_at_a_rollback(session: Session, _transaction: object) -> None:
    _forget(session)
