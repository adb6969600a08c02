"""Opportunities from the regions (docs/design.md §12): the opportunities organizations
publish, the regions organizations follow (and the daily mail's bookkeeping), and a leg's
`opportunity_id`.

Revision ID: d19b00000001
Revises: d16c00000001
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = 'd19b00000001'
down_revision = 'd16c00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('opportunities',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('region', sa.String(length=2), nullable=False),
    sa.Column('municipality', sa.String(length=120), nullable=False),
    sa.Column('pathways', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=True),
    sa.Column('closes_on', sa.Date(), nullable=False),
    sa.Column('places', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('closed_reason', sa.String(length=20), nullable=True),
    sa.Column('published_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('closed_at', hub.db.UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_opportunities_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunities'))
    )
    op.create_index(op.f('ix_opportunities_organization_id'), 'opportunities', ['organization_id'], unique=False)
    op.create_index('ix_opportunities_status_region_published', 'opportunities', ['status', 'region', 'published_at'], unique=False)
    op.create_index('ix_opportunities_status_closes_on', 'opportunities', ['status', 'closes_on'], unique=False)
    op.create_table('region_follows',
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('region', sa.String(length=2), nullable=False),
    sa.Column('daily_mail', sa.Boolean(), nullable=False),
    sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('mailed_until', hub.db.UTCDateTime(), nullable=False),
    sa.Column('next_mail_at', hub.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_region_follows_organization_id_organizations')),
    sa.PrimaryKeyConstraint('organization_id', 'region', name=op.f('pk_region_follows'))
    )
    op.create_index(op.f('ix_region_follows_region'), 'region_follows', ['region'], unique=False)
    op.create_index(op.f('ix_region_follows_next_mail_at'), 'region_follows', ['next_mail_at'], unique=False)
    # A plain ADD COLUMN with its REFERENCES clause on every backend: a batch copy of the legs'
    # table on SQLite would be slow on a large history (SQLite adds no constraint by ALTER, but
    # takes a REFERENCES clause in ADD COLUMN).
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE referrals ADD COLUMN opportunity_id CHAR(32) '
                   'REFERENCES opportunities (id)')
    else:
        op.add_column('referrals', sa.Column('opportunity_id', sa.Uuid(), sa.ForeignKey(
            'opportunities.id', name=op.f('fk_referrals_opportunity_id_opportunities')),
            nullable=True))
    op.create_index(op.f('ix_referrals_opportunity_id'), 'referrals', ['opportunity_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_referrals_opportunity_id'), table_name='referrals')
    with op.batch_alter_table('referrals') as batch:
        batch.drop_column('opportunity_id')
    op.drop_index(op.f('ix_region_follows_next_mail_at'), table_name='region_follows')
    op.drop_index(op.f('ix_region_follows_region'), table_name='region_follows')
    op.drop_table('region_follows')
    op.drop_index('ix_opportunities_status_closes_on', table_name='opportunities')
    op.drop_index('ix_opportunities_status_region_published', table_name='opportunities')
    op.drop_index(op.f('ix_opportunities_organization_id'), table_name='opportunities')
    op.drop_table('opportunities')
