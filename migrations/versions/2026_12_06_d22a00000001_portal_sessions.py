"""Portal sessions kept on the hub's side, so that a logout, a password change or a disabled
account ends them everywhere at once (`hub.accounts.users.PortalSession`).

Revision ID: d22a00000001
Revises: 8768b8f94c0f
Create Date: 2026-12-06 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = 'd22a00000001'
down_revision = '8768b8f94c0f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('portal_sessions',
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('seen_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_portal_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('token_digest', name=op.f('pk_portal_sessions'))
    )
    op.create_index(op.f('ix_portal_sessions_user_id'), 'portal_sessions', ['user_id'], unique=False)
    op.create_index(op.f('ix_portal_sessions_seen_at'), 'portal_sessions', ['seen_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_portal_sessions_seen_at'), table_name='portal_sessions')
    op.drop_index(op.f('ix_portal_sessions_user_id'), table_name='portal_sessions')
    op.drop_table('portal_sessions')
