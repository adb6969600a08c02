"""The missed-deadline digest (`hub.followups.digests`): the misses recorded and not mailed
yet, one narrow row per `referral.deadline_missed` event, written with the event and deleted
by the digest that mails it.  Misses recorded before this revision were mailed one per leg
when they fired: the queue starts empty.

Revision ID: 8768b8f94c0f
Revises: 2f0843dc402c
Create Date: 2026-11-23 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = '8768b8f94c0f'
down_revision = '2f0843dc402c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deadline_digest_queue',
    sa.Column('event_position', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('from_organization_id', sa.Uuid(), nullable=False),
    sa.Column('to_organization_id', sa.Uuid(), nullable=False),
    sa.Column('check', sa.String(length=20), nullable=False),
    sa.Column('due_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('from_participant', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['event_position'], ['events.position'], name=op.f('fk_deadline_digest_queue_event_position_events')),
    sa.PrimaryKeyConstraint('event_position', name=op.f('pk_deadline_digest_queue'))
    )


def downgrade() -> None:
    op.drop_table('deadline_digest_queue')
