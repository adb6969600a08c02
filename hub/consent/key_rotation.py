"""Key rotation for personal data encrypted at rest (`hub data rotate-keys`).

Put the new key first in HUB_DATA_KEYS, keep the old ones after it, run this: every encrypted
value not yet under the first key is re-encrypted with it, and every participant's own key in
the key store is wrapped again by it (`hub.privacy.keystore`).  Then the old keys can be
dropped.  Values sealed under a participant's key need nothing: only the wrapping changes.
The encrypted columns are found in the models themselves (`hub.models`, passed by `hub data
rotate-keys`), so a new one is never forgotten.

`move_to_person_keys` seals under each participant's own key what the key ring still seals of
their data (rows written before per-person keys): `hub db upgrade` runs it once the migrations
are applied (`move_database_to_person_keys`), and so does every `hub data rotate-keys`, so a
row missed by one is moved by the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Column, MetaData, Table, Text, cast, inspect, select, update
from sqlalchemy import text as literal_sql
from sqlalchemy.orm import Session

from hub import crypto

BATCH = 500


def encrypted_columns(metadata: MetaData) -> Iterator[tuple[Table, Column]]:
    """Every encrypted column of `metadata`'s tables: give it the whole schema's
    (`hub.models`), so a new encrypted column is never forgotten."""
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, crypto.EncryptedText | crypto.EncryptedJSON):
                yield table, column


def rotate_all(session: Session, metadata: MetaData,
               progress: Callable[[str, int], None] = lambda _t, _n: None) -> int:
    """Re-encrypt with the current key whatever is not under it yet; returns how many values."""
    keyring = crypto.current()
    total = 0
    for table, column in encrypted_columns(metadata):
        key_columns = list(table.primary_key.columns)
        raw = cast(column, Text)  # the token as stored, not decrypted
        rows = session.execute(select(*key_columns, raw).where(column.is_not(None)))
        # A person's key is not the ring's (its wrapping is rotated in the key store), and an
        # erased value ("") has nothing left to rotate.
        stale = [row for row in rows if row[-1] and crypto.owner_of_token(row[-1]) is None
                 and not keyring.is_current(row[-1])]
        for start in range(0, len(stale), BATCH):
            for row in stale[start:start + BATCH]:
                condition = [c == value for c, value in zip(key_columns, row[:-1], strict=True)]
                session.execute(
                    update(table).where(*condition)
                    .values({column.name: cast(keyring.rotate(row[-1]), Text)})
                )
            total += len(stale[start:start + BATCH])
            progress(f"{table.name}.{column.name}", total)
    return total


# Where each personal column's owner is found, in SQL: (table, column, owner, joins).
_OWNERS = (
    ("participants", "given_name", "participants.id", ()),
    ("participants", "family_name", "participants.id", ()),
    ("participants", "email", "participants.id", ()),
    ("participants", "phone", "participants.id", ()),
    ("referrals", "reason_for_referral", "referrals.participant_id", ()),
    ("referrals", "needs", "referrals.participant_id", ()),
    ("referral_notes", "body", "referrals.participant_id",
     (("referrals", "referrals.id = referral_notes.referral_id"),)),
    ("consent_notes", "body", "consents.participant_id",
     (("consents", "consents.id = consent_notes.consent_id"),)),
    ("followup_records", "note", "referrals.participant_id",
     (("referrals", "referrals.id = followup_records.referral_id"),)),
    ("referral_checklist_items", "note", "referrals.participant_id",
     (("referrals", "referrals.id = referral_checklist_items.referral_id"),)),
    ("peer_matches", "note", "peer_matches.participant_id", ()),
)


def person_columns() -> set[tuple[str, str]]:
    """The (table, column) pairs `move_to_person_keys` knows the owner of."""
    return {(table, column) for table, column, _owner, _joins in _OWNERS}


def move_to_person_keys(session: Session, metadata: MetaData,
                        progress: Callable[[str, int], None] = lambda _t, _n: None) -> int:
    """Seal under each participant's own key the values of theirs the key ring still seals;
    returns how many.  In batches, row by row: the hub keeps running meanwhile (it reads both
    kinds of values), so no downtime is needed."""
    keyring = crypto.current()
    total = 0
    # A migration runs this before later migrations made their tables: those have no rows.
    existing = set(inspect(session.connection()).get_table_names())
    for table_name, column_name, owner_sql, joins in _OWNERS:
        if table_name not in existing:
            continue
        table = metadata.tables[table_name]
        column = table.c[column_name]
        key_columns = list(table.primary_key.columns)
        source: Any = table
        for joined, on in joins:
            source = source.join(metadata.tables[joined], literal_sql(on))
        owner_table, owner_column = owner_sql.split(".")
        owner = metadata.tables[owner_table].c[owner_column]
        raw = cast(column, Text)
        rows = session.execute(select(*key_columns, owner, raw).select_from(source)
                               .where(column.is_not(None)))
        ring_sealed = [row for row in rows
                       if row[-1] and crypto.owner_of_token(row[-1]) is None]
        for start in range(0, len(ring_sealed), BATCH):
            for row in ring_sealed[start:start + BATCH]:
                *identity, person, token = row
                condition = [c == value for c, value in zip(key_columns, identity, strict=True)]
                sealed = crypto.seal_owned(keyring.decrypt(token), person)
                session.execute(update(table).where(*condition)
                                .values({column.name: cast(sealed, Text)}))
            total += len(ring_sealed[start:start + BATCH])
            progress(f"{table_name}.{column_name}", total)
    return total


def move_database_to_person_keys(database_url: str, metadata: MetaData, data_keys: str,
                                 secret_key: str, keystore_url: str) -> int:
    """`move_to_person_keys` on the database at `database_url`, with these keys and key store,
    in a transaction of its own (`hub db upgrade`, after the migrations); returns how many."""
    from sqlalchemy import create_engine, func

    from hub.privacy.keystore import KeyStore
    from hub.referrals.participants import Participant

    engine = create_engine(database_url)
    store = KeyStore(keystore_url)
    try:
        with Session(engine) as session, session.begin():
            if not session.scalar(select(func.count()).select_from(Participant)):
                return 0  # nothing to move: the key store is not even opened
            with crypto.using(crypto.KeyRing.from_settings(data_keys, secret_key), store):
                return move_to_person_keys(session, metadata)
    finally:
        store.dispose()
        engine.dispose()
