"""Preparing a move (docs/design.md §12): a leg's `needed_by` date, which bounds an urgent leg's
deadlines, and a `referral_sharing` consent's `share_details`, without which employers and
insertion enterprises receive names and contact channels only.

Revision ID: d19a00000001
Revises: d17a00000001
Create Date: 2026-12-06 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'd19a00000001'
down_revision = 'd17a00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('referrals') as batch:
        batch.add_column(sa.Column('needed_by', sa.Date(), nullable=True))
    with op.batch_alter_table('consents') as batch:
        batch.add_column(sa.Column('share_details', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('consents') as batch:
        batch.drop_column('share_details')
    with op.batch_alter_table('referrals') as batch:
        batch.drop_column('needed_by')
