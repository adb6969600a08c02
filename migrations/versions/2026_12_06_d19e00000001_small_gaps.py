"""Portal users who ask for the missed-deadline digests of their organization
(`hub.accounts.users.User.deadline_digests`, `hub.followups.digests`).

Revision ID: d19e00000001
Revises: d19b00000001
Create Date: 2026-12-06 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'd19e00000001'
down_revision = 'd19b00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deadline_digests', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('deadline_digests')
