"""Relationship notes (what an organization knows of its collaboration with another, every
version kept) and reports that a directory entry is out of date (docs/design.md §13).

Revision ID: d20a00000001
Revises: d21a00000001
Create Date: 2026-12-06 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = 'd20a00000001'
down_revision = 'd21a00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('relationship_notes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('collaboration', sa.Text(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_relationship_notes_organization_id_organizations')),
    sa.ForeignKeyConstraint(['partner_id'], ['organizations.id'], name=op.f('fk_relationship_notes_partner_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relationship_notes'))
    )
    op.create_index('ix_relationship_notes_pair', 'relationship_notes', ['organization_id', 'partner_id', 'id'], unique=False)
    op.create_table('outdated_reports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('reported_by_organization_id', sa.Uuid(), nullable=False),
    sa.Column('reported_by', sa.String(length=200), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('reported_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', hub.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_outdated_reports_organization_id_organizations')),
    sa.ForeignKeyConstraint(['reported_by_organization_id'], ['organizations.id'], name=op.f('fk_outdated_reports_reported_by_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outdated_reports'))
    )
    op.create_index('ix_outdated_reports_open', 'outdated_reports', ['organization_id', 'resolved_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outdated_reports_open', table_name='outdated_reports')
    op.drop_table('outdated_reports')
    op.drop_index('ix_relationship_notes_pair', table_name='relationship_notes')
    op.drop_table('relationship_notes')
