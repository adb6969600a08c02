"""Partners who answer from their mailbox (design §14, `hub.mailbox`): contacts marked for the
new-leg mails and for the missed-deadline digests, users who ask for the new-leg mails, the
organization's choice of immediate or daily mails and the queue of the daily ones, the rate
limit of the links' pages, and capacity per service with its date.  Existing contacts keep
their digests and get no new-leg mails until their organization marks them.

Revision ID: d17a00000001
Revises: d20a00000001
Create Date: 2026-12-06 19:48:11.016875
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = 'd17a00000001'
down_revision = 'd20a00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('answer_link_hits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('at', hub.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_answer_link_hits'))
    )
    with op.batch_alter_table('answer_link_hits', schema=None) as batch_op:
        batch_op.create_index('ix_answer_link_hits_key_at', ['key', 'at'], unique=False)

    op.create_table('referral_notice_queue',
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('to_organization_id', sa.Uuid(), nullable=False),
    sa.Column('due_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_notice_queue_referral_id_referrals')),
    sa.ForeignKeyConstraint(['to_organization_id'], ['organizations.id'], name=op.f('fk_referral_notice_queue_to_organization_id_organizations')),
    sa.PrimaryKeyConstraint('referral_id', name=op.f('pk_referral_notice_queue'))
    )
    with op.batch_alter_table('referral_notice_queue', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_notice_queue_due_at'), ['due_at'], unique=False)

    with op.batch_alter_table('directory_contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_referrals', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('deadline_digests', sa.Boolean(), server_default=sa.true(), nullable=False))

    with op.batch_alter_table('directory_services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('capacity', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('waitlist_band', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('capacity_updated_at', hub.db.UTCDateTime(), nullable=True))

    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('referral_mails', sa.String(length=10), server_default='immediate', nullable=False))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_referrals', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('notify_referrals')

    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('referral_mails')

    with op.batch_alter_table('directory_services', schema=None) as batch_op:
        batch_op.drop_column('capacity_updated_at')
        batch_op.drop_column('waitlist_band')
        batch_op.drop_column('capacity')

    with op.batch_alter_table('directory_contacts', schema=None) as batch_op:
        batch_op.drop_column('deadline_digests')
        batch_op.drop_column('notify_referrals')

    with op.batch_alter_table('referral_notice_queue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_notice_queue_due_at'))

    op.drop_table('referral_notice_queue')
    with op.batch_alter_table('answer_link_hits', schema=None) as batch_op:
        batch_op.drop_index('ix_answer_link_hits_key_at')

    op.drop_table('answer_link_hits')
