"""Finding organizations: by text (accent-insensitive, see `hub.directory.text`), region, kind,
pathway served and capacity, in keyset pages.

The text search matches each folded word of the query anywhere in the entry's folded search
column.  On PostgreSQL a trigram index (pg_trgm, made by the migration when the server offers
it) serves these substring matches; on SQLite, the embedded mode's directory is small enough for
a scan of one column.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub.directory.organizations import Location, Organization, Service, ServicePathway
from hub.directory.text import search_words


def _like_escaped(word: str) -> str:
    # Folded words hold only [0-9a-z], so nothing needs escaping; kept explicit for safety.
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def in_region(region: str) -> Any:
    """In the region by its seat or by one of its locations."""
    return (Organization.region == region) | Organization.id.in_(
        select(Location.organization_id).where(Location.region == region))


def serving(pathway: str) -> Any:
    """Offers a service for this pathway (the services' `pathways` in the directory)."""
    return Organization.id.in_(
        select(Service.organization_id)
        .join(ServicePathway, ServicePathway.service_id == Service.id)
        .where(ServicePathway.pathway == pathway))


def search_organizations(
    session: Session,
    *,
    q: str | None = None,
    kind: str | None = None,
    region: str | None = None,
    pathway: str | None = None,
    capacity: str | None = None,
    after_id: uuid.UUID | None = None,
    limit: int = 50,
    with_entries: bool = True,
) -> list[Organization]:
    """Organizations matching every filter given, ordered by id for keyset pagination."""
    query = select(Organization).order_by(Organization.id).limit(limit)
    if with_entries:
        query = query.options(selectinload(Organization.services),
                              selectinload(Organization.locations),
                              selectinload(Organization.contacts))
    if kind:
        query = query.where(Organization.kind == kind)
    if region:
        query = query.where(in_region(region))
    if capacity:
        query = query.where(Organization.capacity == capacity)
    if pathway:
        query = query.where(serving(pathway))
    for word in search_words(q or ""):
        query = query.where(Organization.search_text.like(f"%{_like_escaped(word)}%",
                                                          escape="\\"))
    if after_id:
        query = query.where(Organization.id > after_id)
    return list(session.scalars(query))
