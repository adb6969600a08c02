"""Participants found by name, email or phone while encrypted (search terms: blind indexes of
folded name prefixes, email and phone digits), duplicates found by the name words in any
order, a version for corrections (`PATCH /api/v1/participants/{id}`), and the portal's
one-time form tokens (`hub.accounts.form_tokens`).

Existing participants get their name index and search terms here, computed with the key ring
of the settings (the same secret key the hub runs with).

Revision ID: d16a00000001
Revises: d19a00000001
Create Date: 2026-12-06 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = 'd16a00000001'
down_revision = 'd19a00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('participants') as batch:
        batch.add_column(sa.Column('version', sa.Integer(), nullable=False,
                                   server_default='1'))
        batch.add_column(sa.Column('name_index', sa.String(length=64), nullable=True))
        batch.create_index('ix_participants_name', ['organization_id', 'name_index'])
        batch.create_index('ix_participants_newest', ['organization_id', 'created_at', 'id'])
    op.create_table(
        'participant_search_terms',
        sa.Column('participant_id', sa.Uuid(), nullable=False),
        sa.Column('term', sa.String(length=64), nullable=False),
        sa.Column('organization_id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id']),
        sa.ForeignKeyConstraint(['participant_id'], ['participants.id']),
        sa.PrimaryKeyConstraint('participant_id', 'term'),
    )
    op.create_index('ix_participant_search_terms_lookup', 'participant_search_terms',
                    ['organization_id', 'term', 'participant_id'])
    op.create_table(
        'form_tokens',
        sa.Column('token_digest', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
        sa.Column('used_at', hub.db.UTCDateTime(), nullable=True),
        sa.Column('result_path', sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('token_digest'),
    )
    op.create_index('ix_form_tokens_user', 'form_tokens', ['user_id', 'created_at'])
    _index_existing_participants()


def _index_existing_participants() -> None:
    from hub import crypto
    from hub.config import Settings
    from hub.referrals import participant_search
    from hub.referrals.participants import name_index

    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, organization_id, given_name, family_name, email, "
                                "phone FROM participants")).fetchall()
    if not rows:
        return
    settings = Settings.from_env()
    keyring = crypto.KeyRing.from_settings(settings.data_keys, settings.secret_key)
    participants = sa.table('participants', sa.column('id', sa.Uuid()),
                            sa.column('name_index', sa.String()))
    terms = sa.table('participant_search_terms', sa.column('participant_id', sa.Uuid()),
                     sa.column('organization_id', sa.Uuid()), sa.column('term', sa.String()))
    uuid_type = sa.Uuid()
    to_uuid = uuid_type.result_processor(bind.dialect, None) or (lambda value: value)
    for row in rows:
        participant_id, organization_id = to_uuid(row.id), to_uuid(row.organization_id)
        given, family = keyring.decrypt(row.given_name), keyring.decrypt(row.family_name)
        email = keyring.decrypt(row.email) if row.email else None
        phone = keyring.decrypt(row.phone) if row.phone else None
        bind.execute(participants.update().where(participants.c.id == participant_id)
                     .values(name_index=name_index(keyring, given, family)))
        found = participant_search.rows_for(keyring, participant_id, organization_id, given,
                                            family, email, phone)
        if found:
            bind.execute(terms.insert(), found)


def downgrade() -> None:
    op.drop_index('ix_form_tokens_user', table_name='form_tokens')
    op.drop_table('form_tokens')
    op.drop_index('ix_participant_search_terms_lookup', table_name='participant_search_terms')
    op.drop_table('participant_search_terms')
    with op.batch_alter_table('participants') as batch:
        batch.drop_index('ix_participants_newest')
        batch.drop_index('ix_participants_name')
        batch.drop_column('name_index')
        batch.drop_column('version')
