"""The key store: each participant's data key, wrapped by the key ring, kept in a database of
its own (`HUB_KEYSTORE_URL`; embedded: a SQLite file beside the hub's under ./var/).

Why apart: erasing a person destroys their key (crypto-shredding, docs/design.md §15).  If the
keys lived in the hub's database, restoring a backup taken before an erasure would bring the
key back with the data; kept elsewhere, with backups of their own kept only a short while, the
restored data stays sealed.  The hub's database never holds a person's key, wrapped or not.

The store has one table, made when the store is first opened (it is not the hub's schema and
has no migrations).  Keys are written at once, outside the hub's transaction: a transaction
that rolls back leaves an unused key behind, which harms no one.  Unwrapped keys are cached a
few minutes per process; an erasure clears the cache of the process that erases, and the hub's
own rows of that person are emptied in the same transaction, so no process has anything left
to open with a key it still remembers.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import Column, MetaData, Table, Text, Uuid, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Executable

from hub import crypto
from hub.db import UTCDateTime, make_engine, utcnow

CACHE_SECONDS = 300

metadata = MetaData()
participant_keys = Table(
    "participant_keys", metadata,
    Column("participant_id", Uuid(), primary_key=True),
    # The person's Fernet key, encrypted by the key ring (`hub data rotate-keys` re-wraps it).
    Column("wrapped_key", Text(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)


class KeyStore:
    """The participants' keys in the database at `url`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url, pool_size=5)
        self._made = False  # the table, made at first use: starting the hub connects nowhere
        self._cache: dict[uuid.UUID, tuple[Fernet, float]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<KeyStore {self.engine.url.render_as_string(hide_password=True)}>"

    def _ready(self) -> Engine:
        if not self._made:
            if self.url.startswith("sqlite:///"):
                Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True,
                                                                       exist_ok=True)
            metadata.create_all(self.engine, checkfirst=True)
            self._made = True
        return self.engine

    def _insert_new(self) -> Executable:
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(participant_keys).on_conflict_do_nothing(
                index_elements=["participant_id"])
        return sqlite.insert(participant_keys).on_conflict_do_nothing(
            index_elements=["participant_id"])

    def key_of(self, owner: uuid.UUID, *, create: bool) -> Fernet | None:
        """The person's key; made now if `create` and there is none (None otherwise)."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(owner)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self._ready().begin() as connection:
            wrapped = connection.scalar(select(participant_keys.c.wrapped_key).where(
                participant_keys.c.participant_id == owner))
            if wrapped is None and create:
                new_key = Fernet.generate_key().decode("ascii")
                # Two requests may make the first key of one person at once: one row wins.
                connection.execute(self._insert_new(), {
                    "participant_id": owner, "wrapped_key": crypto.current().encrypt(new_key),
                    "created_at": utcnow()})
                wrapped = connection.scalar(select(participant_keys.c.wrapped_key).where(
                    participant_keys.c.participant_id == owner))
        if wrapped is None:
            return None
        key = Fernet(crypto.current().decrypt(wrapped))
        with self._lock:
            self._cache[owner] = (key, now + CACHE_SECONDS)
        return key

    def has_key(self, owner: uuid.UUID) -> bool:
        with self._ready().connect() as connection:
            return connection.scalar(select(participant_keys.c.participant_id).where(
                participant_keys.c.participant_id == owner)) is not None

    def destroy(self, owners: Iterable[uuid.UUID]) -> int:
        """Destroy these people's keys: whatever they sealed can never be read again."""
        chosen = list(owners)
        if not chosen:
            return 0
        with self._lock:
            for owner in chosen:
                self._cache.pop(owner, None)
        with self._ready().begin() as connection:
            return connection.execute(delete(participant_keys).where(
                participant_keys.c.participant_id.in_(chosen))).rowcount

    def owners(self) -> set[uuid.UUID]:
        with self._ready().connect() as connection:
            return set(connection.scalars(select(participant_keys.c.participant_id)))

    def rewrap_all(self) -> int:
        """Wrap every key under the key ring's first key (`hub data rotate-keys`)."""
        ring = crypto.current()
        done = 0
        with self._ready().begin() as connection:
            rows = connection.execute(select(participant_keys.c.participant_id,
                                             participant_keys.c.wrapped_key)).all()
            for owner, wrapped in rows:
                if ring.is_current(wrapped):
                    continue
                connection.execute(update(participant_keys).where(
                    participant_keys.c.participant_id == owner).values(
                    wrapped_key=ring.rotate(wrapped)))
                done += 1
        return done

    def created_at(self, owner: uuid.UUID) -> datetime | None:
        with self._ready().connect() as connection:
            return connection.scalar(select(participant_keys.c.created_at).where(
                participant_keys.c.participant_id == owner))

    def dispose(self) -> None:
        self.engine.dispose()


_current: KeyStore | None = None


def install(store: KeyStore) -> None:
    """The process's key store (the app factory's), also given to `hub.crypto`."""
    global _current
    if _current is not None and _current is not store and _current.url != store.url:
        _current.dispose()
    _current = store
    crypto.install_person_keys(store)


def current() -> KeyStore:
    if _current is None:
        raise RuntimeError("no key store installed: create_app installs HUB_KEYSTORE_URL's")
    return _current
