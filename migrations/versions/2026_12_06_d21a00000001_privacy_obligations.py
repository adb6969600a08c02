"""Privacy obligations of Québec's Law 25 (docs/design.md §15): the register of
confidentiality incidents, which the database keeps at least five years; erasure (the
participants' `erased_at` and the erasure register); the organization's person in charge of
the protection of personal information; and each participant's data moved under
a key of their own, kept in the key store (HUB_KEYSTORE_URL, `hub.privacy.keystore`).

Existing participants' data is moved under their own keys by `hub db upgrade` once every
migration has run (`hub.consent.key_rotation.move_database_to_person_keys`): a later migration
of this chain reads names with the key ring alone.  No downtime: the hub reads values sealed
either way, so the move runs while it serves; rows written meanwhile by an older hub are moved
by the next `hub data rotate-keys`.

Revision ID: d21a00000001
Revises: d22a00000001
Create Date: 2026-12-06 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = 'd21a00000001'
down_revision = 'd22a00000001'
branch_labels = None
depends_on = None

KEPT = "the register keeps a confidentiality incident at least 5 years"


def upgrade() -> None:
    op.create_table('privacy_incidents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('information_involved', sa.Text(), nullable=False),
    sa.Column('circumstances', sa.Text(), nullable=False),
    sa.Column('occurred_at', hub.db.UTCDateTime(), nullable=True),
    sa.Column('discovered_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('people_affected', sa.Integer(), nullable=True),
    sa.Column('risk_assessment', sa.Text(), nullable=True),
    sa.Column('serious_injury_risk', sa.Boolean(), nullable=False),
    sa.Column('cai_notified_at', hub.db.UTCDateTime(), nullable=True),
    sa.Column('people_notified_at', hub.db.UTCDateTime(), nullable=True),
    sa.Column('measures_taken', sa.Text(), nullable=True),
    sa.Column('recorded_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_privacy_incidents_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_incidents'))
    )
    with op.batch_alter_table('privacy_incidents', schema=None) as batch_op:
        batch_op.create_index('ix_privacy_incidents_organization', ['organization_id', 'discovered_at'], unique=False)
    _keep_incidents_five_years()

    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', hub.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('privacy_officer_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('privacy_officer_email', sa.String(length=320), nullable=True))
    op.create_table('participant_erasures',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('erased_by', sa.String(length=200), nullable=False),
    sa.Column('erased_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_participant_erasures_organization_id_organizations')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_participant_erasures_participant_id_participants')),
    sa.PrimaryKeyConstraint('participant_id', name=op.f('pk_participant_erasures'))
    )
    with op.batch_alter_table('participant_erasures', schema=None) as batch_op:
        batch_op.create_index('ix_participant_erasures_organization', ['organization_id', 'erased_at'], unique=False)


# The register is corrected, never emptied early: the database refuses to delete an entry
# recorded less than five years ago, and to move the moment it was recorded (which would
# shorten that).  Timestamps are stored in UTC without a zone on both backends.
def _keep_incidents_five_years() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION privacy_incidents_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    IF OLD.recorded_at > (now() AT TIME ZONE 'UTC') - interval '5 years' THEN
                        RAISE EXCEPTION '{KEPT}: DELETE refused';
                    END IF;
                    RETURN OLD;
                END IF;
                IF NEW.recorded_at IS DISTINCT FROM OLD.recorded_at THEN
                    RAISE EXCEPTION '{KEPT}: recorded_at cannot change';
                END IF;
                RETURN NEW;
            END $$;
        """)
        op.execute("""
            CREATE TRIGGER privacy_incidents_kept BEFORE UPDATE OR DELETE ON privacy_incidents
            FOR EACH ROW EXECUTE FUNCTION privacy_incidents_are_kept();
        """)
    else:
        # SQLite stores these moments as 'YYYY-MM-DD HH:MM:SS[.ffffff]', which compare as text.
        op.execute(f"""
            CREATE TRIGGER privacy_incidents_no_early_delete BEFORE DELETE ON privacy_incidents
            WHEN OLD.recorded_at > datetime('now', '-5 years')
            BEGIN SELECT RAISE(ABORT, '{KEPT}: DELETE refused'); END;
        """)
        op.execute(f"""
            CREATE TRIGGER privacy_incidents_recorded_at_kept BEFORE UPDATE ON privacy_incidents
            WHEN NEW.recorded_at IS NOT OLD.recorded_at
            BEGIN SELECT RAISE(ABORT, '{KEPT}: recorded_at cannot change'); END;
        """)


def downgrade() -> None:
    # Values sealed under a participant's key stay so: a downgraded hub cannot read them.
    with op.batch_alter_table('participant_erasures', schema=None) as batch_op:
        batch_op.drop_index('ix_participant_erasures_organization')
    op.drop_table('participant_erasures')
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('privacy_officer_email')
        batch_op.drop_column('privacy_officer_name')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER privacy_incidents_kept ON privacy_incidents")
        op.execute("DROP FUNCTION privacy_incidents_are_kept()")
    op.drop_table('privacy_incidents')
