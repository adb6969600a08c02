"""The directory of organizations: who is in the network, what kind, where, with what capacity.

Contacts and services belong to the organization, not to a counsellor, so the network's memory
survives staff turnover.  Here is the organization itself; its services, locations and contacts
are in `hub.directory.entries`, the search in `hub.directory.search`, the spreadsheet import in
`hub.directory.grid_import`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from hub.db import Base, utcnow
from hub.followups.deadlines import DEFAULT_TIME_ZONE, is_time_zone

if TYPE_CHECKING:
    from hub.directory.entries import Contact, Location, Service


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
    # Until when `waitlist` or `full` is expected to last (None: not known).
    capacity_until: Mapped[date | None]
    description: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_validated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who last confirmed the entry: "client:<id>", "user:<id>" or "import:<file name>".
    last_validated_by: Mapped[str | None] = mapped_column(String(200))
    # Folded text of the entry (name, services, places...), kept by hub.directory.entries
    # before each flush; what the text search reads.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # IANA name of the zone its business days are counted in (DESIGN §6: deadlines run in the
    # receiving organization's time zone), and the language mails to its contacts are in.
    time_zone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIME_ZONE,
                                           server_default=DEFAULT_TIME_ZONE)
    language: Mapped[str] = mapped_column(String(5), default="fr", server_default="fr")
    # When anything of the entry last changed (its services, places and contacts included),
    # kept by hub.directory.entries before each flush; what HSDS `updated_since` reads.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    # Ordered to the end (ties broken by id), so that two reads of an entry agree: an HSDS
    # export imported back must change nothing.
    services: Mapped[list[Service]] = relationship(
        back_populates="organization", cascade="all, delete-orphan",
        order_by="[Service.name, Service.id]")
    locations: Mapped[list[Location]] = relationship(
        back_populates="organization", cascade="all, delete-orphan",
        order_by="[Location.city, Location.id]")
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="organization", cascade="all, delete-orphan",
        order_by="[Contact.name, Contact.id]")

    __table_args__ = (Index("ix_organizations_kind_region", "kind", "region"),)

    @property
    def is_coordinator(self) -> bool:
        return self.kind == OrganizationKind.COORDINATION


LANGUAGES = ("fr", "en")  # of the hub's mails to an organization's contacts


def check_time_zone_and_language(time_zone: str | None, language: str | None) -> None:
    """ValueError, with what is accepted, for an unknown IANA zone or mail language."""
    if time_zone is not None and not is_time_zone(time_zone):
        raise ValueError(f"Unknown time zone {time_zone!r}: an IANA name such as "
                         "America/Toronto or America/Halifax.")
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"Unknown language {language!r}; one of: {', '.join(LANGUAGES)}.")


def create_organization(session: Session, *, name: str, kind: str, region: str,
                        time_zone: str = DEFAULT_TIME_ZONE, language: str = "fr"
                        ) -> Organization:
    """Add an organization to the directory; `kind` and `region` must be known codes."""
    check_time_zone_and_language(time_zone, language)
    name = name.strip()
    if not name:
        raise ValueError("The organization needs a name.")
    if kind not in set(OrganizationKind):
        raise ValueError(f"Unknown kind {kind!r}; one of: {', '.join(OrganizationKind)}.")
    if region not in QUEBEC_REGIONS:
        raise ValueError(
            f"Unknown region {region!r}; a Québec administrative region code from 01 to 17."
        )
    organization = Organization(name=name, kind=kind, region=region, time_zone=time_zone,
                                language=language)
    session.add(organization)
    session.flush()
    return organization


# The entries' tables must be mapped wherever organizations are (the relationships above name
# them); imported last because they refer back to Organization.
from hub.directory import entries  # noqa: E402, F401
