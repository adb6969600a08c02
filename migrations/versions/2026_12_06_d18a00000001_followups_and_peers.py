"""After the handoff (docs/design.md §10, §11): follow-up records, whose note is encrypted,
one scheduled follow-up answered once per leg; peers' profiles, peer matches, and the hashes of
the single-use links mailed about them; the follow-ups already mailed in a digest, and an index
on when scheduled checks fired (what the digest reads).

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

    op.create_table('peer_profiles',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('region', sa.String(length=2), nullable=False),
    sa.Column('municipality', sa.String(length=120), nullable=False),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('pathways', sa.JSON(), nullable=False),
    sa.Column('offers', sa.JSON(), nullable=False),
    sa.Column('contact_channels', sa.JSON(), nullable=False),
    sa.Column('settled_since', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_peer_profiles_organization_id_organizations')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_peer_profiles_participant_id_participants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_peer_profiles')),
    sa.UniqueConstraint('participant_id', name=op.f('uq_peer_profiles_participant_id'))
    )
    with op.batch_alter_table('peer_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_peer_profiles_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index('ix_peer_profiles_region_status', ['region', 'status'], unique=False)

    op.create_table('peer_matches',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('peer_id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('peer_organization_id', sa.Uuid(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=True),
    sa.Column('note', hub.crypto.EncryptedText(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('proposed_by', sa.String(length=200), nullable=False),
    sa.Column('proposed_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('answered_at', hub.db.UTCDateTime(), nullable=True),
    sa.Column('answered_by', sa.String(length=200), nullable=True),
    sa.Column('ended_at', hub.db.UTCDateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=40), nullable=True),
    sa.Column('checkin_due_at', hub.db.UTCDateTime(), nullable=True),
    sa.Column('checkin_answer', sa.String(length=20), nullable=True),
    sa.Column('checkin_answered_at', hub.db.UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_peer_matches_organization_id_organizations')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_peer_matches_participant_id_participants')),
    sa.ForeignKeyConstraint(['peer_id'], ['peer_profiles.id'], name=op.f('fk_peer_matches_peer_id_peer_profiles')),
    sa.ForeignKeyConstraint(['peer_organization_id'], ['organizations.id'], name=op.f('fk_peer_matches_peer_organization_id_organizations')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_peer_matches_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_peer_matches'))
    )
    with op.batch_alter_table('peer_matches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_peer_matches_checkin_due_at'), ['checkin_due_at'], unique=False)
        batch_op.create_index('ix_peer_matches_open_expiry', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_peer_matches_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_peer_matches_participant_id'), ['participant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_peer_matches_peer_id'), ['peer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_peer_matches_peer_organization_id'), ['peer_organization_id'], unique=False)

    op.create_table('peer_links',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('match_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=10), nullable=False),
    sa.Column('language', sa.String(length=35), nullable=False),
    sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('used_at', hub.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['match_id'], ['peer_matches.id'], name=op.f('fk_peer_links_match_id_peer_matches')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_peer_links'))
    )
    with op.batch_alter_table('peer_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_peer_links_match_id'), ['match_id'], unique=False)

    op.create_table('followup_digest_sent',
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('mailed_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_followup_digest_sent_referral_id_referrals')),
    sa.PrimaryKeyConstraint('referral_id', 'kind', name=op.f('pk_followup_digest_sent'))
    )
    with op.batch_alter_table('referral_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_checks_fired_at'), ['fired_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('referral_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_checks_fired_at'))

    op.drop_table('followup_digest_sent')
    with op.batch_alter_table('peer_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_peer_links_match_id'))

    op.drop_table('peer_links')
    with op.batch_alter_table('peer_matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_peer_matches_peer_organization_id'))
        batch_op.drop_index(batch_op.f('ix_peer_matches_peer_id'))
        batch_op.drop_index(batch_op.f('ix_peer_matches_participant_id'))
        batch_op.drop_index(batch_op.f('ix_peer_matches_organization_id'))
        batch_op.drop_index('ix_peer_matches_open_expiry')
        batch_op.drop_index(batch_op.f('ix_peer_matches_checkin_due_at'))

    op.drop_table('peer_matches')
    with op.batch_alter_table('peer_profiles', schema=None) as batch_op:
        batch_op.drop_index('ix_peer_profiles_region_status')
        batch_op.drop_index(batch_op.f('ix_peer_profiles_organization_id'))

    op.drop_table('peer_profiles')
    with op.batch_alter_table('followup_records', schema=None) as batch_op:
        batch_op.drop_index('uq_followup_records_scheduled', postgresql_where=sa.text("due <> 'ad_hoc'"), sqlite_where=sa.text("due <> 'ad_hoc'"))
        batch_op.drop_index(batch_op.f('ix_followup_records_referral_id'))

    op.drop_table('followup_records')
