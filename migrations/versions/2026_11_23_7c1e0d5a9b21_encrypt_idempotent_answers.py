"""Encrypt the stored answers of idempotent requests: they may show personal data.

Revision ID: 7c1e0d5a9b21
Revises: 4bf752d3735e
Create Date: 2026-11-23 08:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '7c1e0d5a9b21'
down_revision = '4bf752d3735e'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from hub import crypto
    from hub.config import Settings

    settings = Settings.from_env()
    keyring = crypto.KeyRing.from_settings(settings.data_keys, settings.secret_key)
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT client_id, key, body FROM idempotent_responses"))
    for client_id, key, body in rows.fetchall():
        bind.execute(sa.text("UPDATE idempotent_responses SET body = :b "
                             "WHERE client_id = :c AND key = :k"),
                     {"b": keyring.encrypt(body), "c": client_id, "k": key})


def downgrade() -> None:
    pass  # answers stay encrypted; they expire with the records they replay
