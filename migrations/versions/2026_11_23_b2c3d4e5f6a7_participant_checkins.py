"""Participant check-ins: the question mailed to a participant a few business days after a leg
is accepted, with the SHA-256 of its single-use token and the answer (`hub.followups.checkins`).

Revision ID: b2c3d4e5f6a7
Revises: a1b2c3d4e5f6
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = 'b2c3d4e5f6a7'
down_revision = 'a1b2c3d4e5f6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('participant_checkins',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('answered_at', hub.db.UTCDateTime(), nullable=True),
    sa.Column('answer', sa.String(length=20), nullable=True),
    sa.Column('language', sa.String(length=35), nullable=False),
    sa.CheckConstraint("answer IS NULL OR answer IN ('contacted', 'not_contacted', 'no_longer_needed')", name=op.f('ck_participant_checkins_answer')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_participant_checkins_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participant_checkins')),
    sa.UniqueConstraint('referral_id', name=op.f('uq_participant_checkins_referral_id')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_participant_checkins_token_hash'))
    )


def downgrade() -> None:
    op.drop_table('participant_checkins')
