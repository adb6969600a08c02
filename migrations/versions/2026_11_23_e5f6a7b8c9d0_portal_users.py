"""Portal users: people of an organization with a role and an argon2 password hash, their
failed logins (lockout across processes) and single-use password reset tokens (`hub.accounts.users`);
indexes for the portal's inbox, outbound list and the coordinators' on-time record.

Revision ID: e5f6a7b8c9d0
Revises: d4e5f6a7b8c9
Create Date: 2026-11-23 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = 'e5f6a7b8c9d0'
down_revision = 'd4e5f6a7b8c9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('disabled_at', hub.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_users_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_index(op.f('ix_users_organization_id'), 'users', ['organization_id'], unique=False)
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('at', hub.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index('ix_login_failures_email_at', 'login_failures', ['email', 'at'], unique=False)
    op.create_index('ix_login_failures_address_at', 'login_failures', ['address', 'at'], unique=False)
    op.create_table('password_resets',
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('used_at', hub.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_resets_user_id_users')),
    sa.PrimaryKeyConstraint('token_digest', name=op.f('pk_password_resets'))
    )
    op.create_index(op.f('ix_password_resets_user_id'), 'password_resets', ['user_id'], unique=False)
    op.create_index('ix_referrals_open_inbox', 'referrals', ['to_organization_id', 'priority', 'created_at'], unique=False, postgresql_where=sa.text('closed_at IS NULL'), sqlite_where=sa.text('closed_at IS NULL'))
    op.create_index('ix_referrals_open_outbound', 'referrals', ['from_organization_id', 'created_at'], unique=False, postgresql_where=sa.text('closed_at IS NULL'), sqlite_where=sa.text('closed_at IS NULL'))
    op.create_index('ix_referrals_to_created', 'referrals', ['to_organization_id', 'created_at', 'acknowledged_at', 'acknowledge_by'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_referrals_to_created', table_name='referrals')
    op.drop_index('ix_referrals_open_outbound', table_name='referrals')
    op.drop_index('ix_referrals_open_inbox', table_name='referrals')
    op.drop_table('password_resets')
    op.drop_table('login_failures')
    op.drop_table('users')
