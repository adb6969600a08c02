"""Each organization's time zone (its deadlines are counted in it, docs/design.md §6) and the language
mails to its contacts are written in; the follow-up index `ix_referrals_due_closed_at`, which
no query reads since the follow-ups have their own due-at column, is dropped.

Revision ID: 3f9c2a7d5e18
Revises: e5f6a7b8c9d0
Create Date: 2026-11-23 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '3f9c2a7d5e18'
down_revision = 'e5f6a7b8c9d0'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organizations') as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=False,
                                      server_default='America/Toronto'))
        batch_op.add_column(sa.Column('language', sa.String(length=5), nullable=False,
                                      server_default='fr'))
    op.drop_index('ix_referrals_due_closed_at', table_name='referrals')


def downgrade() -> None:
    op.create_index('ix_referrals_due_closed_at', 'referrals', ['closed_at'], unique=False,
                    postgresql_where=sa.text("status = 'completed'"),
                    sqlite_where=sa.text("status = 'completed'"))
    with op.batch_alter_table('organizations') as batch_op:
        batch_op.drop_column('language')
        batch_op.drop_column('time_zone')
