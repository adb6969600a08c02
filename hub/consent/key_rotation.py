"""Key rotation for personal data encrypted at rest (`hub data rotate-keys`).

Put the new key first in HUB_DATA_KEYS, keep the old ones after it, run this: every encrypted
value not yet under the first key is re-encrypted with it.  Then the old keys can be dropped.
The encrypted columns are found in the models themselves (`hub.models`, passed by `hub data
rotate-keys`), so a new one is never forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Column, MetaData, Table, Text, cast, select, update
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
        stale = [row for row in rows if not keyring.is_current(row[-1])]
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
