"""Opportunities' use cases: publish, browse, read, withdraw, the publisher's view of its
candidates, the regions an organization follows, and the scheduler's closing at the date.

Offers are public to the network: any organization reads them; only their publisher withdraws
one or sees its candidates (other organizations get 404 there, so nothing leaks).  Each change
records its event in the caller's transaction (flushed, never committed).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import String, and_, cast, delete, exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hub.accounts.callers import Caller
from hub.db import locked_row, utcnow
from hub.directory.organizations import QUEBEC_REGIONS, Organization, unknown_region
from hub.errors import Invalid, NotAllowed, NotFound
from hub.events.types import EventType
from hub.followups.deadlines import DEFAULT_TIME_ZONE
from hub.mailbox.notices import next_daily
from hub.opportunities.offers import (
    PUBLISHER_KINDS,
    ClosedReason,
    Kind,
    Opportunity,
    OpportunityStatus,
    RegionFollow,
    close,
    local_today,
    record_event,
)
from hub.referrals.legs import Referral
from hub.referrals.lifecycle import Pathway

# A language tag as BCP 47 shapes it (fr, en, es, fr-CA); the API's schema checks it too.
BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_PLACES = 1000
MAX_TITLE = 200
MAX_MUNICIPALITY = 120
MAX_DESCRIPTION = 4000


def _check_fields(*, title: str, kind: str, region: str, municipality: str,
                  pathways: list[str], description: str, languages: list[str],
                  starts_on: date | None, closes_on: date, places: int, today: date) -> None:
    """Every field at once, each with what to fix (the API and the portal show them)."""
    errors: dict[str, list[str]] = {}
    if not title.strip() or len(title) > MAX_TITLE:
        errors["title"] = [f"Give a title of 1 to {MAX_TITLE} characters."]
    if kind not in set(Kind):
        errors["kind"] = [f"Unknown kind {kind!r}; one of: {', '.join(Kind)}."]
    if region not in QUEBEC_REGIONS:
        errors["region"] = [unknown_region(region)]
    if not municipality.strip() or len(municipality) > MAX_MUNICIPALITY:
        errors["municipality"] = [f"Name the municipality (1 to {MAX_MUNICIPALITY} characters)."]
    unknown = [p for p in pathways if p not in set(Pathway)]
    if not pathways or unknown:
        errors["pathways"] = [
            (f"Unknown pathway {', '.join(unknown)}; " if unknown else "Name at least one "
             "pathway; ") + f"pathways are: {', '.join(Pathway)}."]
    if not description.strip() or len(description) > MAX_DESCRIPTION:
        errors["description"] = [f"Describe the opportunity in 1 to {MAX_DESCRIPTION} "
                                 "characters."]
    bad = [tag for tag in languages if not BCP47.match(tag)]
    if not languages or bad:
        errors["languages"] = [
            (f"Not a language tag: {', '.join(bad)}; " if bad else "Name at least one "
             "language; ") + "use BCP 47 tags such as fr, en or es."]
    if closes_on < today:
        errors["closes_on"] = [f"{closes_on.isoformat()} is past: candidates are referred until "
                               f"this day, so give today ({today.isoformat()}) or later."]
    if starts_on is not None and starts_on < today:
        errors["starts_on"] = [f"{starts_on.isoformat()} is past: give the first day, today "
                               "or later, or leave it out."]
    if not 1 <= places <= MAX_PLACES:
        errors["places"] = [f"Give the number of places, from 1 to {MAX_PLACES}."]
    if errors:
        raise Invalid(errors)


def publish(session: Session, caller: Caller, *, title: str, kind: str, region: str,
            municipality: str, pathways: list[str], description: str, languages: list[str],
            closes_on: date, places: int, starts_on: date | None = None) -> Opportunity:
    """Publish an opportunity of the caller's organization: `opportunity.published` goes to
    the organizations following its region."""
    publisher = session.get(Organization, caller.organization_id)
    if caller.is_coordinator or publisher is None or publisher.kind not in PUBLISHER_KINDS:
        raise NotAllowed(
            "Only regional partners, employers, insertion enterprises and entrepreneurship "
            "agencies publish opportunities; your organization may browse them and refer "
            "candidates to them.")
    now = utcnow()
    pathways = list(dict.fromkeys(pathways))
    languages = list(dict.fromkeys(languages))
    _check_fields(title=title, kind=kind, region=region, municipality=municipality,
                  pathways=pathways, description=description, languages=languages,
                  starts_on=starts_on, closes_on=closes_on, places=places,
                  today=local_today(now))
    opportunity = Opportunity(
        id=uuid.uuid4(), organization_id=publisher.id, title=title.strip(), kind=kind,
        region=region, municipality=municipality.strip(), pathways=pathways,
        description=description.strip(), languages=languages, starts_on=starts_on,
        closes_on=closes_on, places=places, status=OpportunityStatus.OPEN.value,
        published_at=now)
    session.add(opportunity)
    record_event(session, opportunity, EventType.OPPORTUNITY_PUBLISHED, caller.actor,
                 caller.organization_id)
    return opportunity


def _pathway_listed(pathway: str) -> ColumnElement[bool]:
    # The JSON text holds each code in quotes on both backends: '"training"' matches the code
    # only, never a longer one that ends with it.
    return cast(Opportunity.pathways, String).like(f'%"{pathway}"%')


def browse(session: Session, caller: Caller, *, region: str | None = None,
           pathway: str | None = None, include_closed: bool = False,
           after: tuple[datetime, uuid.UUID] | None = None, limit: int | None = None
           ) -> list[Opportunity]:
    """Opportunities of the network, newest first: open ones unless `include_closed`; `after`
    (published_at, id) of the last one read and `limit` read them page by page."""
    if region is not None and region not in QUEBEC_REGIONS:
        raise Invalid({"region": [unknown_region(region)]})
    if pathway is not None and pathway not in set(Pathway):
        raise Invalid({"pathway": [f"Unknown pathway {pathway!r}; one of: "
                                   f"{', '.join(Pathway)}."]})
    query = select(Opportunity)
    if not include_closed:
        query = query.where(Opportunity.status == OpportunityStatus.OPEN.value)
    if region is not None:
        query = query.where(Opportunity.region == region)
    if pathway is not None:
        query = query.where(_pathway_listed(pathway))
    if after is not None:
        published_at, last_id = after
        query = query.where(or_(Opportunity.published_at < published_at,
                                and_(Opportunity.published_at == published_at,
                                     Opportunity.id < last_id)))
    query = query.order_by(Opportunity.published_at.desc(), Opportunity.id.desc())
    return list(session.scalars(query.limit(limit) if limit is not None else query))


def get(session: Session, caller: Caller, opportunity_id: uuid.UUID) -> Opportunity:
    """One opportunity; any organization may read it (offers are public to the network)."""
    opportunity = session.get(Opportunity, opportunity_id)
    if opportunity is None:
        raise NotFound("opportunity", opportunity_id)
    return opportunity


def _own(session: Session, caller: Caller, opportunity_id: uuid.UUID, *,
         lock: bool = False) -> Opportunity:
    """The caller's opportunity; with `lock`, under the row lock an acceptance takes
    (`offers.locked`) and read as it is now."""
    opportunity = (locked_row(session, Opportunity, opportunity_id) if lock
                   else session.get(Opportunity, opportunity_id))
    if opportunity is None or opportunity.organization_id != caller.organization_id:
        # Readable by all, but acted on by its publisher only: 404 like any object of another.
        raise NotFound("opportunity of your organization", opportunity_id)
    return opportunity


def withdraw(session: Session, caller: Caller, opportunity_id: uuid.UUID) -> Opportunity:
    """The publisher closes its opportunity (reason withdrawn); a closed one stays as it is.
    Legs already sent for it go on: their receiver answers each."""
    # Under the lock: one that fills the last place meanwhile has closed it, and the
    # withdrawal then changes nothing.
    opportunity = _own(session, caller, opportunity_id, lock=True)
    if opportunity.status == OpportunityStatus.OPEN.value:
        close(session, opportunity, ClosedReason.WITHDRAWN, actor=caller.actor,
              source_organization_id=caller.organization_id)
    return opportunity


@dataclass(frozen=True)
class CandidateLeg:
    """One leg referred to the opportunity: no personal data (the leg's page shows the person
    under the visibility rules)."""

    referral_id: uuid.UUID
    status: str
    sent_at: datetime
    from_organization_id: uuid.UUID
    from_organization_name: str
    needed_by: date | None


@dataclass(frozen=True)
class Candidates:
    opportunity: Opportunity
    counts: dict[str, int] = field(default_factory=dict)  # leg status -> how many
    legs: list[CandidateLeg] = field(default_factory=list)  # oldest first


def candidates(session: Session, caller: Caller, opportunity_id: uuid.UUID) -> Candidates:
    """The candidates referred to the publisher's opportunity: how many per status, and the
    legs (who sent each, when, its status).  Other organizations get 404."""
    opportunity = _own(session, caller, opportunity_id)
    rows = session.execute(
        select(Referral.id, Referral.status, Referral.created_at, Referral.needed_by,
               Organization.id, Organization.name)
        .join(Organization, Organization.id == Referral.from_organization_id)
        .where(Referral.opportunity_id == opportunity.id)
        .order_by(Referral.created_at, Referral.id)).all()
    legs = [CandidateLeg(referral_id=row[0], status=row[1], sent_at=row[2], needed_by=row[3],
                         from_organization_id=row[4], from_organization_name=row[5])
            for row in rows]
    return Candidates(opportunity, dict(Counter(leg.status for leg in legs)), legs)


def followed_regions(session: Session, caller: Caller) -> list[RegionFollow]:
    return list(session.scalars(select(RegionFollow).where(
        RegionFollow.organization_id == caller.organization_id).order_by(RegionFollow.region)))


def follow_regions(session: Session, caller: Caller, regions: list[str], daily_mail: bool
                   ) -> list[RegionFollow]:
    """Replace the regions the caller's organization follows.  A region followed already keeps
    its place in the daily mail (what was published since its last mail); a new one starts
    from now."""
    chosen = list(dict.fromkeys(regions))
    unknown = [r for r in chosen if r not in QUEBEC_REGIONS]
    if unknown:
        raise Invalid({"regions": [unknown_region(*unknown)]})
    # Two choices at once take turns on the organization's row: the second then keeps the
    # regions the first added instead of adding them again (a conflict).
    organization = locked_row(session, Organization, caller.organization_id)
    zone = (organization.time_zone if organization else None) or DEFAULT_TIME_ZONE
    now = utcnow()
    session.execute(delete(RegionFollow).where(
        RegionFollow.organization_id == caller.organization_id,
        RegionFollow.region.not_in(chosen)))
    kept = {f.region: f for f in followed_regions(session, caller)}
    next_mail = next_daily(now, zone) if daily_mail else None
    follows = []
    for region in chosen:
        follow = kept.get(region)
        if follow is None:
            follow = RegionFollow(organization_id=caller.organization_id, region=region,
                                  daily_mail=daily_mail, created_at=now, mailed_until=now,
                                  next_mail_at=next_mail)
            session.add(follow)
        else:
            if daily_mail and not follow.daily_mail:
                follow.mailed_until = now  # mails start from the day they were asked for
            follow.daily_mail = daily_mail
            follow.next_mail_at = (follow.next_mail_at or next_mail) if daily_mail else None
        follows.append(follow)
    session.flush()
    return sorted(follows, key=lambda f: f.region)  # as followed_regions lists them


def close_due(session: Session, now: datetime) -> int:
    """The scheduler's check: close the open opportunities whose closing day is over (closes_on
    is the last day candidates are referred, in Québec's time); returns how many."""
    due = list(session.scalars(
        select(Opportunity).where(Opportunity.status == OpportunityStatus.OPEN.value,
                                  Opportunity.closes_on < local_today(now))
        .order_by(Opportunity.closes_on, Opportunity.id).limit(500)
        .with_for_update(skip_locked=True)))
    for opportunity in due:
        close(session, opportunity, ClosedReason.CLOSES_ON_PASSED, actor="scheduler",
              source_organization_id=None)
    return len(due)


def closing_pending(now: datetime) -> ColumnElement[bool]:
    """Whether `close_due` has anything to do at `now` (the scheduler asks it first)."""
    return exists().where(Opportunity.status == OpportunityStatus.OPEN.value,
                          Opportunity.closes_on < local_today(now))
