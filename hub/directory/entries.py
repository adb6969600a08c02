"""What an organization's directory entry holds besides its name: services, locations and
contacts, and the folded search text kept up to date before every flush.

Contacts are staff of the organization (role, email, phone), not participants: no consent is
needed for them, but the API shows them to authenticated partners only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from hub.db import Base, utcnow
from hub.directory.organizations import QUEBEC_REGIONS, Organization
from hub.directory.text import fold


class ContactChannel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"


class Service(Base):
    """One service an organization offers, with the pathways (DESIGN §1) it serves."""

    __tablename__ = "directory_services"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    eligibility_notes: Mapped[str | None] = mapped_column(Text)
    # BCP 47 codes of the languages the service is offered in, e.g. ["fr", "en", "es"].
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)

    organization: Mapped[Organization] = relationship(back_populates="services")
    # One row per pathway, so "which organizations serve entrepreneurship" is an indexed join.
    pathway_rows: Mapped[list[ServicePathway]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ServicePathway.pathway")

    @property
    def pathways(self) -> list[str]:
        return [row.pathway for row in self.pathway_rows]

    @pathways.setter
    def pathways(self, pathways: list[str]) -> None:
        self.pathway_rows = [ServicePathway(pathway=p) for p in dict.fromkeys(pathways)]


class ServicePathway(Base):
    __tablename__ = "directory_service_pathways"

    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("directory_services.id"),
                                                  primary_key=True)
    pathway: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class Location(Base):
    """A place where the organization receives people, in a Québec region."""

    __tablename__ = "directory_locations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str | None] = mapped_column(String(120))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    region: Mapped[str] = mapped_column(String(2), index=True)

    organization: Mapped[Organization] = relationship(back_populates="locations")


class Contact(Base):
    """A role at the organization and how to reach it; kept when the person leaves the role
    only until someone updates the entry, which is the validation reminder's job."""

    __tablename__ = "directory_contacts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    preferred_channel: Mapped[str | None] = mapped_column(String(10))

    organization: Mapped[Organization] = relationship(back_populates="contacts")


def search_text_of(name: str, region: str, description: str | None = None,
                   words: Iterable[str | None] = (), regions: Iterable[str] = ()) -> str:
    """Everything a counsellor may type to find an organization, folded: its name,
    description and region's name, and the `words` of its services, places and contacts."""
    parts = [name, description, QUEBEC_REGIONS.get(region), *words,
             *(QUEBEC_REGIONS.get(code) for code in regions)]
    return fold(" ".join(p for p in parts if p))


def entry_search_text(organization: Organization) -> str:
    words: list[str | None] = []
    for service in organization.services:
        words += [service.name, service.description]
    for location in organization.locations:
        words += [location.name, location.city]
    for contact in organization.contacts:
        words += [contact.name, contact.role]
    return search_text_of(organization.name, organization.region, organization.description,
                          words, [place.region for place in organization.locations])


@event.listens_for(Session, "before_flush")
def _refresh_search_text(session: Session, _context: Any, _instances: Any) -> None:
    """Keep `Organization.search_text` true to the entry, and `updated_at` at the moment it
    last changed, whatever code changed it (a pathway added or removed changes its service)."""
    touched: dict[int, Organization] = {}
    changed: set[int] = set()
    for instance in (*session.new, *session.dirty, *session.deleted):
        organization: Organization | None = None
        if isinstance(instance, Organization):
            organization = instance
        elif isinstance(instance, Service | Location | Contact):
            organization = instance.organization or session.get(Organization,
                                                                instance.organization_id)
        elif isinstance(instance, ServicePathway):
            continue
        if organization is not None and organization not in session.deleted:
            touched[id(organization)] = organization
            if (instance in session.new or instance in session.deleted
                    or session.is_modified(instance)):
                changed.add(id(organization))
    now = utcnow()
    for key, organization in touched.items():
        text = entry_search_text(organization)
        if organization.search_text != text:
            organization.search_text = text
        if key in changed and organization not in session.new:
            organization.updated_at = now
