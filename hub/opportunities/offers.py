"""The opportunities' tables, their view as the API and the events show it, and the rules a leg
meets when it names one: the opportunity must be open and published by the leg's receiver, and
an opportunity closes in the transaction of the acceptance that fills its places.

The referral use cases (`hub.referrals.handoffs`) call `check_leg_to` and `on_accept`; the
opportunities' own use cases are in `hub.opportunities.publishing`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.accounts.callers import Caller
from hub.db import Base, iso_utc, locked_row, utcnow
from hub.errors import DomainError, Invalid, NotFound
from hub.events.store import record
from hub.events.types import EventType
from hub.followups.deadlines import DEFAULT_TIME_ZONE
from hub.referrals.legs import Referral

# Closing dates are days in Québec: America/Toronto keeps Montréal's rules (one zone since 1970).
LOCAL_ZONE = DEFAULT_TIME_ZONE


class Kind(StrEnum):
    JOB = "job"
    INTERNSHIP = "internship"
    TRAINING = "training"
    OTHER = "other"


class OpportunityStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ClosedReason(StrEnum):
    CLOSES_ON_PASSED = "closes_on_passed"
    PLACES_FILLED = "places_filled"
    WITHDRAWN = "withdrawn"


# The legs' statuses that hold a place: the receiver said yes.
FILLED_STATUSES = ("accepted", "in_progress", "completed")
# Who may publish (docs/design.md §12).
PUBLISHER_KINDS = ("regional_partner", "employer", "insertion_enterprise",
                   "entrepreneurship_agency")


class Opportunity(Base):
    """A job, internship or training place offered to the network's candidates."""

    __tablename__ = "opportunities"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The publisher: the only organization a leg for this opportunity may go to.
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       index=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    region: Mapped[str] = mapped_column(String(2))
    municipality: Mapped[str] = mapped_column(String(120))
    # Pathway codes, a JSON list; filtered by their quoted code in the JSON text (`browse`).
    pathways: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text)
    languages: Mapped[list[str]] = mapped_column(JSON)
    starts_on: Mapped[date | None]
    closes_on: Mapped[date]
    places: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))
    closed_reason: Mapped[str | None] = mapped_column(String(20))
    published_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # One more with every event of the opportunity: the events' `sequence`.
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # Browsing: open ones of a region, newest first; the closing check: open ones by date.
        Index("ix_opportunities_status_region_published", "status", "region", "published_at"),
        Index("ix_opportunities_status_closes_on", "status", "closes_on"),
    )

    @property
    def subject(self) -> str:
        return f"opportunities/{self.id}"


class RegionFollow(Base):
    """An organization following a region: it hears of the opportunities published there by
    its feed and webhooks, and by a daily mail when it asked for one."""

    __tablename__ = "region_follows"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       primary_key=True)
    region: Mapped[str] = mapped_column(String(2), primary_key=True, index=True)
    daily_mail: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    # The daily mail lists what was published after `mailed_until`; it is due at `next_mail_at`
    # (the next 8:00 in the organization's time zone; None without daily_mail).
    mailed_until: Mapped[datetime]
    next_mail_at: Mapped[datetime | None] = mapped_column(index=True)


@dataclass(eq=False)
class OpportunityClosed(DomainError):
    """A leg named an opportunity that no longer takes candidates (409)."""

    http_status = 409
    title = "Opportunity closed"
    slug = "opportunity-closed"

    opportunity_id: object
    reason: str | None

    def __str__(self) -> str:
        why = {ClosedReason.CLOSES_ON_PASSED.value: "its closing date passed",
               ClosedReason.PLACES_FILLED.value: "its places are filled",
               ClosedReason.WITHDRAWN.value: "its publisher withdrew it"}.get(
                   self.reason or "", "it is closed")
        return (f"Opportunity {self.opportunity_id} takes no more candidates: {why}. Send the "
                "referral without opportunity_id, or choose an open opportunity "
                "(GET /api/v1/opportunities).")

    def members(self) -> dict[str, Any]:
        return {"closed_reason": self.reason}


@dataclass(eq=False)
class OpportunityFull(DomainError):
    """An acceptance beyond the opportunity's places (409): decline or let the sender
    redirect instead."""

    http_status = 409
    title = "Opportunity full"
    slug = "opportunity-full"

    opportunity_id: object
    places: int

    def __str__(self) -> str:
        # Publishing again makes a new opportunity: it would not take this leg.
        return (f"All {self.places} places of opportunity {self.opportunity_id} are taken by "
                "accepted candidates. Decline this leg (reason no_capacity) so that its "
                "sender can redirect the candidate; to take more candidates, publish a new "
                "opportunity (POST /api/v1/opportunities).")

    def members(self) -> dict[str, Any]:
        return {"places": self.places}


def local_today(now: datetime) -> date:
    return now.astimezone(ZoneInfo(LOCAL_ZONE)).date()


def view(opportunity: Opportunity) -> dict[str, Any]:
    """The opportunity as the API returns it and its events carry it (no personal data)."""
    return {
        "id": str(opportunity.id),
        "organization_id": str(opportunity.organization_id),
        "title": opportunity.title,
        "kind": opportunity.kind,
        "region": opportunity.region,
        "municipality": opportunity.municipality,
        "pathways": list(opportunity.pathways),
        "description": opportunity.description,
        "languages": list(opportunity.languages),
        "starts_on": opportunity.starts_on.isoformat() if opportunity.starts_on else None,
        "closes_on": opportunity.closes_on.isoformat(),
        "places": opportunity.places,
        "status": opportunity.status,
        "closed_reason": opportunity.closed_reason,
        "published_at": iso_utc(opportunity.published_at),
        "closed_at": iso_utc(opportunity.closed_at),
        "version": opportunity.version,
    }


def followers_of(session: Session, region: str) -> set[uuid.UUID]:
    return set(session.scalars(select(RegionFollow.organization_id)
                               .where(RegionFollow.region == region)))


def record_event(session: Session, opportunity: Opportunity, event_type: EventType,
                 actor: str, source_organization_id: uuid.UUID | None) -> None:
    """The opportunity's event, to the organizations following its region and its publisher."""
    session.flush()  # the new version: the event's sequence
    record(session, event_type, subject=opportunity.subject, sequence=opportunity.version,
           source_organization_id=source_organization_id, actor=actor,
           data={"opportunity": view(opportunity)},
           audience=followers_of(session, opportunity.region) | {opportunity.organization_id})


def close(session: Session, opportunity: Opportunity, reason: ClosedReason, *, actor: str,
          source_organization_id: uuid.UUID | None) -> None:
    opportunity.status = OpportunityStatus.CLOSED.value
    opportunity.closed_reason = reason.value
    opportunity.closed_at = utcnow()
    record_event(session, opportunity, EventType.OPPORTUNITY_CLOSED, actor,
                 source_organization_id)


def check_leg_to(session: Session, opportunity_id: uuid.UUID,
                 to_organization_id: uuid.UUID) -> Opportunity:
    """The opportunity a new leg to `to_organization_id` names, if it may: it exists, it is
    open, and the leg goes to its publisher."""
    opportunity = session.get(Opportunity, opportunity_id)
    if opportunity is None:
        raise Invalid({"opportunity_id": [
            f"No opportunity with id {opportunity_id}; list them with GET "
            "/api/v1/opportunities."]})
    if opportunity.organization_id != to_organization_id:
        message = ("A referral to an opportunity goes to the organization that published it: "
                   f"set to_organization_id to {opportunity.organization_id}.")
        raise Invalid({"to_organization_id": [message], "opportunity_id": [message]})
    if opportunity.status != OpportunityStatus.OPEN.value:
        raise OpportunityClosed(opportunity.id, opportunity.closed_reason)
    return opportunity


def places_taken(session: Session, opportunity_ids: Iterable[uuid.UUID]
                 ) -> dict[uuid.UUID, int]:
    """How many places each opportunity's legs hold (accepted, started or completed); an
    opportunity none holds is left out."""
    ids = set(opportunity_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Referral.opportunity_id, func.count()).where(
            Referral.opportunity_id.in_(ids), Referral.status.in_(FILLED_STATUSES))
        .group_by(Referral.opportunity_id))
    return {opportunity_id: count for opportunity_id, count in rows
            if opportunity_id is not None}


def locked(session: Session, opportunity_id: uuid.UUID) -> Opportunity:
    """The opportunity under its row lock (`hub.db.locked_row`), read as it is now: two
    acceptances at once count its places one after the other."""
    opportunity = locked_row(session, Opportunity, opportunity_id)
    if opportunity is None:
        raise NotFound("opportunity", opportunity_id)
    return opportunity


def before_accept(session: Session, opportunity_id: uuid.UUID) -> tuple[Opportunity, int]:
    """Called before a leg for the opportunity is accepted: refuses an acceptance beyond the
    places (OpportunityFull); returns the locked opportunity and how many places are taken."""
    opportunity = locked(session, opportunity_id)
    taken = places_taken(session, [opportunity_id]).get(opportunity_id, 0)
    if taken >= opportunity.places:
        raise OpportunityFull(opportunity.id, opportunity.places)
    return opportunity, taken


def after_accept(session: Session, opportunity: Opportunity, taken_before: int,
                 caller: Caller) -> None:
    """The acceptance took a place: the last one closes the opportunity (places_filled), in
    the same transaction."""
    if (taken_before + 1 >= opportunity.places
            and opportunity.status == OpportunityStatus.OPEN.value):
        close(session, opportunity, ClosedReason.PLACES_FILLED, actor=caller.actor,
              source_organization_id=caller.organization_id)
