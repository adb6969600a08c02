"""Consent and privacy: consents (append-only), the access log, personal data encrypted at rest
and blind indexes for duplicate participants.

Revision ID: 524186344bd2
Revises: b8d7a50a3e4b
Create Date: 2026-11-23 07:32:16.249275

Rows written before this revision hold personal data in clear: they are encrypted here with
the key ring of the environment running `hub db upgrade` (HUB_DATA_KEYS, HUB_SECRET_KEY).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

import hub.db

revision = '524186344bd2'
down_revision = 'b8d7a50a3e4b'
branch_labels = None
depends_on = None

APPEND_ONLY = ("consents", "consent_organizations", "consent_endings")


def upgrade() -> None:
    op.create_table('consents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('network_wide', sa.Boolean(), nullable=False),
    sa.Column('evidence', sa.String(length=20), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_by_organization_id', sa.Uuid(), nullable=False),
    sa.Column('granted_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_consents_participant_id_participants')),
    sa.ForeignKeyConstraint(['recorded_by_organization_id'], ['organizations.id'], name=op.f('fk_consents_recorded_by_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index('ix_consents_expires_at', ['expires_at'], unique=False)
        batch_op.create_index('ix_consents_participant_purpose', ['participant_id', 'purpose'], unique=False)

    op.create_table('personal_data_reads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('via', sa.String(length=300), nullable=False),
    sa.Column('read_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_personal_data_reads_organization_id_organizations')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_personal_data_reads_participant_id_participants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_personal_data_reads'))
    )
    with op.batch_alter_table('personal_data_reads', schema=None) as batch_op:
        batch_op.create_index('ix_personal_data_reads_participant', ['participant_id', 'read_at'], unique=False)

    op.create_table('consent_endings',
    sa.Column('consent_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consents.id'], name=op.f('fk_consent_endings_consent_id_consents')),
    sa.PrimaryKeyConstraint('consent_id', name=op.f('pk_consent_endings'))
    )
    op.create_table('consent_notes',
    sa.Column('consent_id', sa.Uuid(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consents.id'], name=op.f('fk_consent_notes_consent_id_consents')),
    sa.PrimaryKeyConstraint('consent_id', name=op.f('pk_consent_notes'))
    )
    op.create_table('consent_organizations',
    sa.Column('consent_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consents.id'], name=op.f('fk_consent_organizations_consent_id_consents')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_organizations_organization_id_organizations')),
    sa.PrimaryKeyConstraint('consent_id', 'organization_id', name=op.f('pk_consent_organizations'))
    )
    with op.batch_alter_table('consent_organizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_organizations_organization_id'), ['organization_id'], unique=False)

    # Encrypted columns hold Fernet tokens (text, longer than the clear value).
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identity_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('email_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('phone_index', sa.String(length=64), nullable=True))
        for column in ('given_name', 'family_name', 'email', 'phone'):
            batch_op.alter_column(column, type_=sa.Text())
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.alter_column('needs', type_=sa.Text(),
                              postgresql_using='needs::text')
    _encrypt_existing_rows()
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.alter_column('identity_index', nullable=False)
        batch_op.create_index('ix_participants_identity', ['organization_id', 'identity_index'], unique=False)
    _forbid_changing_consents()


def _encrypt_existing_rows() -> None:
    from hub import crypto
    from hub.config import Settings

    settings = Settings.from_env()
    keyring = crypto.KeyRing.from_settings(settings.data_keys, settings.secret_key)
    bind = op.get_bind()

    def seal(value: str | None) -> str | None:
        return None if value is None else keyring.encrypt(value)

    people = bind.execute(sa.text(
        "SELECT id, given_name, family_name, email, phone, birth_year FROM participants"))
    for pid, given, family, email, phone, birth_year in people.fetchall():
        email_n = crypto.normalize_email(email or "")
        phone_n = crypto.normalize_phone(phone or "")
        bind.execute(sa.text(
            "UPDATE participants SET given_name=:g, family_name=:f, email=:e, phone=:p, "
            "identity_index=:i, email_index=:ei, phone_index=:pi WHERE id=:id"), {
            "g": seal(given), "f": seal(family), "e": seal(email), "p": seal(phone),
            "i": crypto.identity_index(keyring, given, family, birth_year),
            "ei": keyring.blind_index(f"email:{email_n}") if email_n else None,
            "pi": keyring.blind_index(f"phone:{phone_n}") if phone_n else None,
            "id": pid})
    legs = bind.execute(sa.text("SELECT id, reason_for_referral, needs FROM referrals"))
    for lid, reason, needs in legs.fetchall():
        needs_list = json.loads(needs) if isinstance(needs, str) else (needs or [])
        bind.execute(sa.text("UPDATE referrals SET reason_for_referral=:r, needs=:n WHERE id=:id"),
                     {"r": seal(reason), "n": seal(json.dumps(needs_list, ensure_ascii=False)),
                      "id": lid})
    notes = bind.execute(sa.text("SELECT id, body FROM referral_notes"))
    for nid, body in notes.fetchall():
        bind.execute(sa.text("UPDATE referral_notes SET body=:b WHERE id=:id"),
                     {"b": seal(body), "id": nid})


# Consents are append-only history: the database refuses UPDATE and DELETE on them.
def _forbid_changing_consents() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"""
                CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION events_are_immutable();
            """)
    else:
        for table in APPEND_ONLY:
            for operation in ("UPDATE", "DELETE"):
                op.execute(f"""
                    CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}
                    BEGIN SELECT RAISE(ABORT, 'consents are append-only: {operation} refused'); END;
                """)


def downgrade() -> None:
    # Personal data stays encrypted: a downgrade keeps the tokens in the (text) columns.
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_immutable ON {table}")
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_index('ix_participants_identity')
        batch_op.drop_column('phone_index')
        batch_op.drop_column('email_index')
        batch_op.drop_column('identity_index')

    with op.batch_alter_table('consent_organizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_organizations_organization_id'))

    op.drop_table('consent_organizations')
    op.drop_table('consent_notes')
    op.drop_table('consent_endings')
    with op.batch_alter_table('personal_data_reads', schema=None) as batch_op:
        batch_op.drop_index('ix_personal_data_reads_participant')

    op.drop_table('personal_data_reads')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_participant_purpose')
        batch_op.drop_index('ix_consents_expires_at')

    op.drop_table('consents')
