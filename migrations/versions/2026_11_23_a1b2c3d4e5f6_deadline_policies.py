"""Deadline policies: business days per check and priority, for a receiving organization or
any, and a pathway or any (docs/design.md §6).

"Any" is NULL; four unique indexes, three partial, keep one rule per scope on SQLite and
PostgreSQL alike (NULLs are distinct in a plain unique constraint).

Revision ID: a1b2c3d4e5f6
Revises: 706ee7a8a4b6
Create Date: 2026-11-23 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = 'a1b2c3d4e5f6'
down_revision = '706ee7a8a4b6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deadline_policies',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=True),
    sa.Column('pathway', sa.String(length=40), nullable=True),
    sa.Column('check', sa.String(length=20), nullable=False),
    sa.Column('priority', sa.String(length=10), nullable=False),
    sa.Column('business_days', sa.Integer(), nullable=False),
    sa.Column('updated_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('business_days >= 0 AND business_days <= 60', name=op.f('ck_deadline_policies_business_days_range')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_deadline_policies_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deadline_policies'))
    )
    op.create_index('ux_deadline_policies_org_pathway', 'deadline_policies', ['check', 'priority', 'organization_id', 'pathway'], unique=True)
    op.create_index('ux_deadline_policies_org', 'deadline_policies', ['check', 'priority', 'organization_id'], unique=True, postgresql_where=sa.text('pathway IS NULL'), sqlite_where=sa.text('pathway IS NULL'))
    op.create_index('ux_deadline_policies_pathway', 'deadline_policies', ['check', 'priority', 'pathway'], unique=True, postgresql_where=sa.text('organization_id IS NULL'), sqlite_where=sa.text('organization_id IS NULL'))
    op.create_index('ux_deadline_policies_hub', 'deadline_policies', ['check', 'priority'], unique=True, postgresql_where=sa.text('organization_id IS NULL AND pathway IS NULL'), sqlite_where=sa.text('organization_id IS NULL AND pathway IS NULL'))


def downgrade() -> None:
    op.drop_index('ux_deadline_policies_hub', table_name='deadline_policies')
    op.drop_index('ux_deadline_policies_pathway', table_name='deadline_policies')
    op.drop_index('ux_deadline_policies_org', table_name='deadline_policies')
    op.drop_index('ux_deadline_policies_org_pathway', table_name='deadline_policies')
    op.drop_table('deadline_policies')
