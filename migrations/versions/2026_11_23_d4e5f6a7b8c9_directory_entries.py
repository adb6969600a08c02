"""Directory entries: services (with the pathways they serve), locations, contacts, the
capacity's expected end, who last validated an entry, and a folded search column (with a
trigram index on PostgreSQL when pg_trgm can be installed).

Revision ID: d4e5f6a7b8c9
Revises: c3d4e5f6a7b8
Create Date: 2026-11-23 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.directory.organizations import QUEBEC_REGIONS
from hub.directory.text import fold

revision = 'd4e5f6a7b8c9'
down_revision = 'c3d4e5f6a7b8'
branch_labels = None
depends_on = None


def _can_use_trigrams(bind: sa.Connection) -> bool:
    """pg_trgm is a trusted extension: any user with CREATE on the database may install it.
    Without it the search still works, by a scan."""
    return bool(bind.execute(sa.text(
        "SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm') > 0 OR "
        "((SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm') > 0 AND "
        "has_database_privilege(current_database(), 'CREATE'))"
    )).scalar())


def upgrade() -> None:
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('capacity_until', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('website', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('last_validated_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('search_text', sa.Text(), server_default='',
                                      nullable=False))

    op.create_table('directory_services',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('eligibility_notes', sa.Text(), nullable=True),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_directory_services_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_services'))
    )
    op.create_index(op.f('ix_directory_services_organization_id'), 'directory_services', ['organization_id'], unique=False)
    op.create_table('directory_service_pathways',
    sa.Column('service_id', sa.Uuid(), nullable=False),
    sa.Column('pathway', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['directory_services.id'], name=op.f('fk_directory_service_pathways_service_id_directory_services')),
    sa.PrimaryKeyConstraint('service_id', 'pathway', name=op.f('pk_directory_service_pathways'))
    )
    op.create_index(op.f('ix_directory_service_pathways_pathway'), 'directory_service_pathways', ['pathway'], unique=False)
    op.create_table('directory_locations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('city', sa.String(length=120), nullable=True),
    sa.Column('postal_code', sa.String(length=10), nullable=True),
    sa.Column('region', sa.String(length=2), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_directory_locations_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_locations'))
    )
    op.create_index(op.f('ix_directory_locations_organization_id'), 'directory_locations', ['organization_id'], unique=False)
    op.create_index(op.f('ix_directory_locations_region'), 'directory_locations', ['region'], unique=False)
    op.create_table('directory_contacts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('role', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('preferred_channel', sa.String(length=10), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_directory_contacts_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_contacts'))
    )
    op.create_index(op.f('ix_directory_contacts_organization_id'), 'directory_contacts', ['organization_id'], unique=False)

    # Existing organizations become findable by name and region at once.
    bind = op.get_bind()
    organizations = sa.table('organizations', sa.column('id', sa.Uuid()), sa.column('name'),
                             sa.column('region'), sa.column('search_text'))
    for row in bind.execute(sa.select(organizations.c.id, organizations.c.name,
                                      organizations.c.region)).all():
        bind.execute(organizations.update().where(organizations.c.id == row.id).values(
            search_text=fold(f"{row.name} {QUEBEC_REGIONS.get(row.region, '')}")))

    if bind.dialect.name == 'postgresql' and _can_use_trigrams(bind):
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute('CREATE INDEX ix_organizations_search_text_trgm ON organizations '
                   'USING gin (search_text gin_trgm_ops)')


def downgrade() -> None:
    op.execute('DROP INDEX IF EXISTS ix_organizations_search_text_trgm')
    op.drop_index(op.f('ix_directory_contacts_organization_id'), table_name='directory_contacts')
    op.drop_table('directory_contacts')
    op.drop_index(op.f('ix_directory_locations_region'), table_name='directory_locations')
    op.drop_index(op.f('ix_directory_locations_organization_id'), table_name='directory_locations')
    op.drop_table('directory_locations')
    op.drop_index(op.f('ix_directory_service_pathways_pathway'), table_name='directory_service_pathways')
    op.drop_table('directory_service_pathways')
    op.drop_index(op.f('ix_directory_services_organization_id'), table_name='directory_services')
    op.drop_table('directory_services')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('search_text')
        batch_op.drop_column('last_validated_by')
        batch_op.drop_column('website')
        batch_op.drop_column('description')
        batch_op.drop_column('capacity_until')
