"""After the handoff (docs/design.md §10, §11): follow-up records, whose note is encrypted,
one scheduled follow-up answered once per leg.

Revision ID: d18a00000001
Revises: d16a00000001
Create Date: 2026-12-06 19:46:49.636897
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.crypto
import hub.db

revision = 'd18a00000001'
down_revision = 'd16a00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('followup_records',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('due', sa.String(length=20), nullable=False),
    sa.Column('reached', sa.Boolean(), nullable=False),
    sa.Column('situation', sa.String(length=30), nullable=False),
    sa.Column('in_destination_region', sa.Boolean(), nullable=True),
    sa.Column('note', hub.crypto.EncryptedText(), nullable=True),
    sa.Column('recorded_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_followup_records_organization_id_organizations')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_followup_records_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followup_records'))
    )
    with op.batch_alter_table('followup_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_followup_records_referral_id'), ['referral_id'], unique=False)
        batch_op.create_index('uq_followup_records_scheduled', ['referral_id', 'due'], unique=True, postgresql_where=sa.text("due <> 'ad_hoc'"), sqlite_where=sa.text("due <> 'ad_hoc'"))



def downgrade() -> None:
    with op.batch_alter_table('followup_records', schema=None) as batch_op:
        batch_op.drop_index('uq_followup_records_scheduled', postgresql_where=sa.text("due <> 'ad_hoc'"), sqlite_where=sa.text("due <> 'ad_hoc'"))
        batch_op.drop_index(batch_op.f('ix_followup_records_referral_id'))

    op.drop_table('followup_records')
