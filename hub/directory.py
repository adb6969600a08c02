"""The directory of organizations: who is in the network, what kind, where, with what capacity.

Contacts and services belong to the organization, not to a counsellor, so the network's memory
survives staff turnover.  Services, contacts and imports come with the directory work; here is
what referrals need: the organization itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.db import Base, utcnow


class OrganizationKind(StrEnum):
    COMMUNITY = "community"
    REGIONAL_PARTNER = "regional_partner"
    ENTREPRENEURSHIP_AGENCY = "entrepreneurship_agency"
    COOPERATIVE_DEVELOPMENT = "cooperative_development"
    INSERTION_ENTERPRISE = "insertion_enterprise"
    EMPLOYER = "employer"
    COORDINATION = "coordination"


class Capacity(StrEnum):
    OPEN = "open"
    WAITLIST = "waitlist"
    FULL = "full"


# Québec's administrative regions, by official code.
QUEBEC_REGIONS: dict[str, str] = {
    "01": "Bas-Saint-Laurent",
    "02": "Saguenay–Lac-Saint-Jean",
    "03": "Capitale-Nationale",
    "04": "Mauricie",
    "05": "Estrie",
    "06": "Montréal",
    "07": "Outaouais",
    "08": "Abitibi-Témiscamingue",
    "09": "Côte-Nord",
    "10": "Nord-du-Québec",
    "11": "Gaspésie–Îles-de-la-Madeleine",
    "12": "Chaudière-Appalaches",
    "13": "Laval",
    "14": "Lanaudière",
    "15": "Laurentides",
    "16": "Montérégie",
    "17": "Centre-du-Québec",
}


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    region: Mapped[str] = mapped_column(String(2))
    capacity: Mapped[str] = mapped_column(String(20), default=Capacity.OPEN.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_validated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_organizations_kind_region", "kind", "region"),)

    @property
    def is_coordinator(self) -> bool:
        return self.kind == OrganizationKind.COORDINATION


def create_organization(session: Session, *, name: str, kind: str, region: str) -> Organization:
    """Add an organization to the directory; `kind` and `region` must be known codes."""
    name = name.strip()
    if not name:
        raise ValueError("The organization needs a name.")
    if kind not in set(OrganizationKind):
        raise ValueError(f"Unknown kind {kind!r}; one of: {', '.join(OrganizationKind)}.")
    if region not in QUEBEC_REGIONS:
        raise ValueError(
            f"Unknown region {region!r}; a Québec administrative region code from 01 to 17."
        )
    organization = Organization(name=name, kind=kind, region=region)
    session.add(organization)
    session.flush()
    return organization


def search_organizations(
    session: Session,
    *,
    kind: str | None = None,
    region: str | None = None,
    q: str | None = None,
    after_id: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Organization]:
    """Organizations matching the filters, ordered by id for keyset pagination."""
    query = select(Organization).order_by(Organization.id).limit(limit)
    if kind:
        query = query.where(Organization.kind == kind)
    if region:
        query = query.where(Organization.region == region)
    if q:
        pattern = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Organization.name.ilike(f"%{pattern}%", escape="\\"))
    if after_id:
        query = query.where(Organization.id > after_id)
    return list(session.scalars(query))
