"""The daily mail of opportunities: an organization following regions with `daily_mail` gets,
at 8:00 in its time zone, one mail listing the open opportunities published in those regions
since its last one (none when there is nothing new).

Recipients: the organization's directory contacts marked `notify_referrals`, in the
organization's language; without any, its portal administrators, in their own.  A scheduled
check (`hub.followups.tick`) runs it: the follows that are due are taken under a row lock
(skipped by a second scheduler on PostgreSQL) and moved to their next 8:00 in the transaction
that queues the mails, and each mail's dedupe key names the organization, the day and the
recipient: one mail per recipient and day, however often the check runs.

An offer holds no personal data: the mail says the opportunity's title, kind, place, dates,
places and publisher, and links to its page in the portal.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hub.accounts.users import Role, User
from hub.directory.organizations import QUEBEC_REGIONS, Contact, Organization
from hub.followups.deadlines import DEFAULT_TIME_ZONE
from hub.followups.staff_mails import (
    DEFAULT_PUBLIC_URL,
    language_of,
    mail_date,
    mail_texts,
    one_line,
)
from hub.mailbox.notices import next_daily
from hub.opportunities.offers import Opportunity, OpportunityStatus, RegionFollow
from hub.outbox.mail import queue_mails


def N_(message: str) -> str:
    """Marks a text for the catalogues (`make messages`), translated when a mail is built."""
    return message


KINDS = {"job": N_("Job"), "internship": N_("Internship"), "training": N_("Training"),
         "other": N_("Other opportunity")}
BATCH = 2000  # follows taken per pass (the tick runs passes while they find work)
MAX_LISTED = 30  # a longer list ends with how many more there are, and the portal's link


def opportunity_link(public_url: str, opportunity_id: uuid.UUID) -> str:
    """The portal's page of an opportunity."""
    return f"{public_url.rstrip('/')}/opportunities/{opportunity_id}"


def mails_pending(now: datetime) -> ColumnElement[bool]:
    """Whether `mail_daily` has a follow due at `now` (the scheduler asks it first)."""
    return exists().where(RegionFollow.next_mail_at <= now)


def _recipients(session: Session, organizations: list[Organization]
                ) -> dict[uuid.UUID, list[tuple[str, str, str]]]:
    """(address, language, key) of each recipient of each organization: contacts marked
    `notify_referrals`, else the organization's portal administrators."""
    languages = {o.id: language_of(o.language) for o in organizations}
    found: dict[uuid.UUID, list[tuple[str, str, str]]] = defaultdict(list)
    for c in session.scalars(select(Contact).where(
            Contact.organization_id.in_(languages), Contact.notify_referrals.is_(True),
            Contact.email.is_not(None)).order_by(Contact.organization_id, Contact.id)):
        found[c.organization_id].append(
            (str(c.email), languages[c.organization_id], f"contact:{c.id}"))
    without_contacts = set(languages) - set(found)
    if without_contacts:
        for u in session.scalars(select(User).where(
                User.organization_id.in_(without_contacts), User.role == Role.ORG_ADMIN.value,
                User.disabled_at.is_(None)).order_by(User.organization_id, User.id)):
            found[u.organization_id].append((u.email, language_of(u.language), f"user:{u.id}"))
    return found


def mail_daily(session: Session, now: datetime, *,
               public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """Queue the daily mails that are due at `now`; returns how many follows it moved to their
    next morning (the tick runs it again while that is not 0)."""
    due = select(RegionFollow).where(RegionFollow.next_mail_at <= now).order_by(
        RegionFollow.organization_id, RegionFollow.region).limit(BATCH)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    follows = list(session.scalars(due))
    if len(follows) == BATCH:
        # A full batch may end inside an organization's regions: that organization waits for
        # the next pass, so that it gets one mail listing all of them.
        follows = [f for f in follows if f.organization_id != follows[-1].organization_id]
    if not follows:
        return 0
    by_organization: dict[uuid.UUID, list[RegionFollow]] = defaultdict(list)
    for follow in follows:
        by_organization[follow.organization_id].append(follow)
    organizations = {o.id: o for o in session.scalars(
        select(Organization).where(Organization.id.in_(by_organization)))}
    news_of: dict[uuid.UUID, list[Opportunity]] = {}
    for organization_id, followed in by_organization.items():
        zone = organizations[organization_id].time_zone or DEFAULT_TIME_ZONE
        # Each region from its own last mail: a region followed yesterday lists one day.
        news = list(session.scalars(
            select(Opportunity).where(
                Opportunity.status == OpportunityStatus.OPEN.value,
                Opportunity.organization_id != organization_id,
                Opportunity.published_at <= now,
                or_(*(and_(Opportunity.region == f.region,
                           Opportunity.published_at > f.mailed_until) for f in followed)))
            .order_by(Opportunity.published_at.desc(), Opportunity.id)))
        for follow in followed:
            follow.mailed_until = now
            follow.next_mail_at = next_daily(now, zone)
        if news:
            news_of[organization_id] = news
    listed = {o.organization_id for news in news_of.values() for o in news}
    publishers: dict[uuid.UUID, str] = dict(session.execute(select(
        Organization.id, Organization.name).where(Organization.id.in_(listed))).all())
    recipients = _recipients(session, [organizations[i] for i in news_of])
    mails = []
    for organization_id, news in news_of.items():
        organization = organizations[organization_id]
        zone = organization.time_zone or DEFAULT_TIME_ZONE
        day = now.astimezone(ZoneInfo(zone)).date().isoformat()
        for address, language, key in recipients.get(organization_id, []):
            subject, text = _mail(language, organization, news, publishers, public_url)
            mails.append({"to": address, "subject": subject, "text": text,
                          "language": language,
                          "dedupe_key": f"opportunities_daily:{organization_id}:{day}:{key}"})
    session.flush()
    queue_mails(session, mails, now=now)
    return len(follows)


def _mail(language: str, organization: Organization, news: list[Opportunity],
          publishers: dict[uuid.UUID, str], public_url: str) -> tuple[str, str]:
    texts = mail_texts(language)
    values = {"num": len(news), "organization": one_line(organization.name)}
    subject = texts.ngettext("%(num)d new opportunity in the regions you follow",
                             "%(num)d new opportunities in the regions you follow",
                             len(news)) % values
    parts = [texts.ngettext(
        "Hello,\n\nOne opportunity was published in the regions %(organization)s follows "
        "since the last mail.\n\n",
        "Hello,\n\n%(num)d opportunities were published in the regions %(organization)s "
        "follows since the last mail.\n\n", len(news)) % values]
    for opportunity in news[:MAX_LISTED]:
        link = opportunity_link(public_url, opportunity.id)
        item: dict[str, object] = {
            "title": one_line(opportunity.title),
            "kind": texts.gettext(KINDS.get(opportunity.kind, opportunity.kind)),
            "publisher": one_line(publishers.get(opportunity.organization_id, "")),
            "municipality": one_line(opportunity.municipality),
            "region": QUEBEC_REGIONS.get(opportunity.region, opportunity.region),
            "closes_on": mail_date(opportunity.closes_on, language),
            "places": opportunity.places,
        }
        # Names and codes only, the same layout in every language.
        parts.append("{title} ({kind}), {publisher}\n{municipality}, {region}\n".format(**item))
        if opportunity.starts_on is not None:
            parts.append(texts.gettext("Starts on: %(date)s\n") % {
                "date": mail_date(opportunity.starts_on, language)})
        parts.append(texts.ngettext(
            "Refer candidates until %(closes_on)s: %(places)d place\n",
            "Refer candidates until %(closes_on)s: %(places)d places\n",
            opportunity.places) % item + link + "\n\n")
    if len(news) > MAX_LISTED:
        more = len(news) - MAX_LISTED
        parts.append(texts.ngettext("And %(num)d more in the portal.\n\n",
                                    "And %(num)d more in the portal.\n\n", more)
                     % {"num": more})
    parts.append(texts.gettext(
        "You receive this mail because %(organization)s follows these regions with a daily "
        "mail; change that under the followed regions in the portal or with PUT "
        "/api/v1/opportunities/follows.\n\nAutomatic message from Maillage.\n") % values)
    return subject, "".join(parts)
