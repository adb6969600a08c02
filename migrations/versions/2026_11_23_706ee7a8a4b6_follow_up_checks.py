"""Follow-up checks (one row per leg and check, partial indexes on the due-at columns, the
expiry date of legs) and who registered each webhook endpoint.

Revision ID: 706ee7a8a4b6
Revises: 9d2f4c6b8a10
Create Date: 2026-11-23 08:28:14.912556
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import hub.db

revision = '706ee7a8a4b6'
down_revision = '9d2f4c6b8a10'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_endpoint_registrations',
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=48), nullable=False),
    sa.Column('may_answer', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('endpoint_id', name=op.f('pk_webhook_endpoint_registrations'))
    )
    op.create_table('organization_checks',
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('last_validated_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('fired_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_organization_checks_organization_id_organizations')),
    sa.PrimaryKeyConstraint('organization_id', 'last_validated_at', name=op.f('pk_organization_checks'))
    )
    op.create_table('referral_checks',
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('due_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('fired_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_checks_referral_id_referrals')),
    sa.PrimaryKeyConstraint('referral_id', 'kind', name=op.f('pk_referral_checks'))
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expire_by', hub.db.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_referrals_due_acknowledge_by', ['acknowledge_by'], unique=False, postgresql_where=sa.text("status = 'sent'"), sqlite_where=sa.text("status = 'sent'"))
        batch_op.create_index('ix_referrals_due_closed_at', ['closed_at'], unique=False, postgresql_where=sa.text("status = 'completed'"), sqlite_where=sa.text("status = 'completed'"))
        batch_op.create_index('ix_referrals_due_decide_by', ['decide_by'], unique=False, postgresql_where=sa.text("status = 'acknowledged'"), sqlite_where=sa.text("status = 'acknowledged'"))
        batch_op.create_index('ix_referrals_due_expire_by', ['expire_by'], unique=False, postgresql_where=sa.text("status = 'sent'"), sqlite_where=sa.text("status = 'sent'"))
        batch_op.create_index('ix_referrals_due_start_by', ['start_by'], unique=False, postgresql_where=sa.text("status = 'accepted'"), sqlite_where=sa.text("status = 'accepted'"))

    _set_expiry_of_open_legs()


def _set_expiry_of_open_legs() -> None:
    """Legs sent before this revision expire at twice their acknowledgement allowance too."""
    from hub.followups import deadlines

    bind = op.get_bind()
    legs = bind.execute(sa.text(
        "SELECT id, priority, created_at FROM referrals WHERE status = 'sent'")).fetchall()
    for leg_id, priority, created_at in legs:
        if isinstance(created_at, str):  # SQLite hands raw text to text() queries
            created_at = datetime.fromisoformat(created_at)
        sent_at = created_at.replace(tzinfo=UTC)  # stored as naive UTC
        expire_by = deadlines.deadline("acknowledge", priority, sent_at, times=2)
        bind.execute(sa.text("UPDATE referrals SET expire_by = :e WHERE id = :id"),
                     {"e": expire_by.astimezone(UTC).replace(tzinfo=None), "id": leg_id})


def downgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_due_start_by', postgresql_where=sa.text("status = 'accepted'"), sqlite_where=sa.text("status = 'accepted'"))
        batch_op.drop_index('ix_referrals_due_expire_by', postgresql_where=sa.text("status = 'sent'"), sqlite_where=sa.text("status = 'sent'"))
        batch_op.drop_index('ix_referrals_due_decide_by', postgresql_where=sa.text("status = 'acknowledged'"), sqlite_where=sa.text("status = 'acknowledged'"))
        batch_op.drop_index('ix_referrals_due_closed_at', postgresql_where=sa.text("status = 'completed'"), sqlite_where=sa.text("status = 'completed'"))
        batch_op.drop_index('ix_referrals_due_acknowledge_by', postgresql_where=sa.text("status = 'sent'"), sqlite_where=sa.text("status = 'sent'"))
        batch_op.drop_column('expire_by')

    op.drop_table('referral_checks')
    op.drop_table('organization_checks')
    op.drop_table('webhook_endpoint_registrations')
