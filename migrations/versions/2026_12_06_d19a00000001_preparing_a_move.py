"""Preparing a move (docs/design.md §12): a leg's `needed_by` date, which bounds an urgent leg's
deadlines; a `referral_sharing` consent's `share_details`, without which employers and
insertion enterprises receive names and contact channels only; the legs' shared checklists; households.

Revision ID: d19a00000001
Revises: d17a00000001
Create Date: 2026-12-06 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

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
    op.create_table('referral_checklist_items',
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('owner', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),  # a Fernet token (hub.crypto)
    sa.Column('updated_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_checklist_items_referral_id_referrals')),
    sa.PrimaryKeyConstraint('referral_id', 'code', name=op.f('pk_referral_checklist_items'))
    )
    op.create_table('households',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_households_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_households'))
    )
    op.create_index(op.f('ix_households_organization_id'), 'households', ['organization_id'], unique=False)
    op.create_table('household_members',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('household_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_household_members_household_id_households')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_household_members_participant_id_participants')),
    sa.PrimaryKeyConstraint('participant_id', name=op.f('pk_household_members'))
    )
    op.create_index(op.f('ix_household_members_household_id'), 'household_members', ['household_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_household_members_household_id'), table_name='household_members')
    op.drop_table('household_members')
    op.drop_index(op.f('ix_households_organization_id'), table_name='households')
    op.drop_table('households')
    op.drop_table('referral_checklist_items')
    with op.batch_alter_table('consents') as batch:
        batch.drop_column('share_details')
    with op.batch_alter_table('referrals') as batch:
        batch.drop_column('needed_by')
