"""When each directory entry last changed (`organizations.updated_at`), for HSDS
`updated_since`: entries already there start from their last validation, the last moment the
hub recorded a change to them.

Revision ID: 2f0843dc402c
Revises: 3f9c2a7d5e18
Create Date: 2026-11-23 22:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = '2f0843dc402c'
down_revision = '3f9c2a7d5e18'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organizations') as batch_op:
        batch_op.add_column(sa.Column('updated_at', hub.db.UTCDateTime(), nullable=True))
    op.execute('UPDATE organizations SET updated_at = last_validated_at')
    with op.batch_alter_table('organizations') as batch_op:
        batch_op.alter_column('updated_at', existing_type=hub.db.UTCDateTime(), nullable=False)
        batch_op.create_index('ix_organizations_updated_at', ['updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('organizations') as batch_op:
        batch_op.drop_index('ix_organizations_updated_at')
        batch_op.drop_column('updated_at')
