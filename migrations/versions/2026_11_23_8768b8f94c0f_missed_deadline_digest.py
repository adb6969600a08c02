"""The missed-deadline digest (`hub.deadline_digests`): the cursor of the event log it reads
from, and a partial index on the `referral.deadline_missed` events in the feed's order.

The cursor starts after the events already recorded: the mails of the misses recorded before
this revision were queued one per leg when they fired.

Revision ID: 8768b8f94c0f
Revises: 3f9c2a7d5e18
Create Date: 2026-11-23 22:30:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import hub.db

revision = '8768b8f94c0f'
down_revision = '3f9c2a7d5e18'
branch_labels = None
depends_on = None

MISSED = 'referral.deadline_missed'


def upgrade() -> None:
    op.create_table('mail_digest_cursors',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('transaction_order', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', hub.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_mail_digest_cursors'))
    )
    op.create_index('ix_events_deadline_missed', 'events', ['transaction_order', 'position'],
                    unique=False, postgresql_where=sa.text(f"type = '{MISSED}'"),
                    sqlite_where=sa.text(f"type = '{MISSED}'"))
    connection = op.get_bind()
    last = connection.execute(sa.text(
        'SELECT transaction_order, position FROM events '
        'ORDER BY transaction_order DESC, position DESC LIMIT 1')).first()
    cursors = sa.table('mail_digest_cursors', sa.column('name'),
                       sa.column('transaction_order'), sa.column('position'),
                       sa.column('updated_at', hub.db.UTCDateTime()))
    op.bulk_insert(cursors, [{
        'name': MISSED, 'transaction_order': last[0] if last else 0,
        'position': last[1] if last else 0, 'updated_at': datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_index('ix_events_deadline_missed', table_name='events',
                  postgresql_where=sa.text(f"type = '{MISSED}'"),
                  sqlite_where=sa.text(f"type = '{MISSED}'"))
    op.drop_table('mail_digest_cursors')
