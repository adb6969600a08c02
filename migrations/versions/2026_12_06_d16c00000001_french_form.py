"""How French pages agree with each portal user: `users.french_form` (feminine, masculine or
neutral, neutral for every existing user until they say).

Revision ID: d16c00000001
Revises: d18a00000001
Create Date: 2026-12-06 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'd16c00000001'
down_revision = 'd18a00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('french_form', sa.String(length=10),
                                      server_default='neutral', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('french_form')
