"""The directory of organizations: who is in the network, what kind, where, with what capacity.

Contacts and services belong to the organization, not to a counsellor, so the network's memory
survives staff turnover.  Here is the organization and its directory entry: its services,
locations and contacts (staff of the organization, not participants: no consent is needed for
them, but the API shows them to authenticated partners only), and the folded search text kept
up to date before every flush.  The search is in `hub.directory.search`, the spreadsheet
import in `hub.directory.grid_import`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, event, false, true
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from hub.db import Base, utcnow
from hub.directory.text import fold
from hub.followups.deadlines import DEFAULT_TIME_ZONE, is_time_zone


class OrganizationKind(StrEnum):
    COMMUNITY = "community"
    REGIONAL_PARTNER = "regional_partner"
    ENTREPRENEURSHIP_AGENCY = "entrepreneurship_agency"
    COOPERATIVE_DEVELOPMENT = "cooperative_development"
    INSERTION_ENTERPRISE = "insertion_enterprise"
    EMPLOYER = "employer"
    # CISSS/CLSC, MRC, Services Québec office, cégep or school service centre, municipality.
    PUBLIC_INSTITUTION = "public_institution"
    OTHER = "other"
    COORDINATION = "coordination"


class Capacity(StrEnum):
    OPEN = "open"
    WAITLIST = "waitlist"
    FULL = "full"


class WaitlistBand(StrEnum):
    """How long a service's wait is, in bands a receiver can answer without counting."""

    UNDER_1_MONTH = "under_1_month"
    ONE_TO_3_MONTHS = "1_to_3_months"
    OVER_3_MONTHS = "over_3_months"
    UNDETERMINED = "undetermined"


# A service's capacity older than this is shown as stale where a counsellor chooses a partner.
CAPACITY_STALE_AFTER = timedelta(days=30)


def capacity_is_stale(updated_at: datetime | None, now: datetime) -> bool:
    """Whether a capacity said at `updated_at` is too old to trust (never said: stale)."""
    return updated_at is None or now - updated_at > CAPACITY_STALE_AFTER


class ReferralMails(StrEnum):
    """When an organization's notification recipients hear of new legs (design §14)."""

    IMMEDIATE = "immediate"  # one mail per leg, as soon as it is sent
    DAILY = "daily"  # one mail a day at 8:00 in its time zone, listing the new legs


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



def unknown_region(*codes: object) -> str:
    """What a refusal says of codes that are not Québec's regions (QUEBEC_REGIONS)."""
    return (f"Unknown region {', '.join(map(repr, codes))}; a Québec administrative region "
            "code from 01 to 17 (e.g. 01 Bas-Saint-Laurent).")

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
    # The person in charge of the protection of personal information (Law 25), named on the
    # consent form the organization's counsellors give participants.
    privacy_officer_name: Mapped[str | None] = mapped_column(String(200))
    privacy_officer_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_validated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who last confirmed the entry: "client:<id>", "user:<id>" or "import:<file name>".
    last_validated_by: Mapped[str | None] = mapped_column(String(200))
    # Folded text of the entry (name, services, places...), kept by hub.directory.organizations
    # before each flush; what the text search reads.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # IANA name of the zone its business days are counted in (docs/design.md §6: deadlines run
    # in the receiving organization's time zone), and the language mails to its contacts are in.
    time_zone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIME_ZONE,
                                           server_default=DEFAULT_TIME_ZONE)
    language: Mapped[str] = mapped_column(String(5), default="fr", server_default="fr")
    # `immediate` or `daily`: how its notification recipients hear of new legs
    # (`hub.mailbox.notices`).
    referral_mails: Mapped[str] = mapped_column(String(10), default=ReferralMails.IMMEDIATE.value,
                                                server_default=ReferralMails.IMMEDIATE.value)
    # When anything of the entry last changed (its services, places and contacts included),
    # kept by hub.directory.organizations before each flush; what HSDS `updated_since` reads.
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


# A name without control characters (C0, DEL, C1): one line, as every list and header shows it.
ONE_LINE_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"


def is_one_line(text: str) -> bool:
    # fullmatch: Python's `$` would also match before a final line feed.
    return re.fullmatch(ONE_LINE_PATTERN, text) is not None


def create_organization(session: Session, *, name: str, kind: str, region: str,
                        time_zone: str = DEFAULT_TIME_ZONE, language: str = "fr"
                        ) -> Organization:
    """Add an organization to the directory; `kind` and `region` must be known codes."""
    check_time_zone_and_language(time_zone, language)
    name = name.strip()
    if not name:
        raise ValueError("The organization needs a name.")
    if not is_one_line(name):
        raise ValueError("An organization's name is one line, without control characters "
                         "(line breaks, tabs...).")
    if kind not in set(OrganizationKind):
        raise ValueError(f"Unknown kind {kind!r}; one of: {', '.join(OrganizationKind)}.")
    if region not in QUEBEC_REGIONS:
        raise ValueError(unknown_region(region))
    organization = Organization(name=name, kind=kind, region=region, time_zone=time_zone,
                                language=language)
    session.add(organization)
    session.flush()
    return organization


class ContactChannel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"


class Service(Base):
    """One service an organization offers, with the pathways (docs/design.md §1) it serves."""

    __tablename__ = "directory_services"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    eligibility_notes: Mapped[str | None] = mapped_column(Text)
    # BCP 47 codes of the languages the service is offered in, e.g. ["fr", "en", "es"].
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Room in this service now (design §14), and since when the receiver says so: a counsellor
    # choosing a partner sees its age, stale after `CAPACITY_STALE_AFTER`.  None: never said.
    capacity: Mapped[str | None] = mapped_column(String(20))
    waitlist_band: Mapped[str | None] = mapped_column(String(20))
    capacity_updated_at: Mapped[datetime | None]

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
    # Mailed a link for every new leg to the organization (`hub.mailbox.notices`), which lets
    # them answer it without an account.
    notify_referrals: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Mailed the missed-deadline digest (`hub.followups.digests`) unless turned off.
    deadline_digests: Mapped[bool] = mapped_column(default=True, server_default=true())

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
