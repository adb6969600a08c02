"""The new-leg mail (design §14): when a leg is sent (forwarded, redirected) to an
organization, its notification recipients hear of it by mail, in the organization's language,
with a link to answer it.

Built after the commit: the worker's fan-out reads each `referral.sent` event from the event
outbox (`hub.outbox.webhook_fanout.fan_out`) and calls `notify` in its transaction, which
queues the mails in the mail outbox (`hub.outbox.mail`); the worker's mail loop sends them.
So a leg rolled back never mails anyone, and every path that sends a leg (API, portal,
forward, redirect, inbound webhook) mails the same way.

Recipients: the directory contacts marked `notify_referrals` (each gets a link of their own,
`hub.mailbox.links`, to answer without an account) and portal users of the organization who
asked for these mails (their link opens the leg in the portal).  An organization that chose
`daily` gets none of these at once: its legs wait in `referral_notice_queue` and `mail_daily`
sends one list per recipient at 8:00 in its time zone.

What a mail holds, no more (design §14): the sending organization, pathway, priority, the
deadline to acknowledge, `needed_by` when the leg has one, the participant's given name and
family initial (only when the receiver may read them, decided and logged by
`hub.consent.visibility`, as a read by the recipient), and the link.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from gettext import NullTranslations
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.accounts.callers import Caller
from hub.accounts.users import User
from hub.consent import access_log
from hub.consent.visibility import Reader
from hub.db import Base, table_of
from hub.directory.organizations import Contact, Organization, ReferralMails
from hub.events.store import Event
from hub.events.types import EventType
from hub.followups.deadlines import DEFAULT_TIME_ZONE
from hub.followups.staff_mails import (
    DEFAULT_PUBLIC_URL,
    language_of,
    leg_link,
    mail_date,
    mail_texts,
    mail_time,
    one_line,
)
from hub.mailbox import links
from hub.outbox.mail import queue_mails
from hub.referrals.legs import OPEN_STATUSES, Referral

DAILY_AT = time(8, 0)  # local time of the daily mail
VIA = "new-leg mail"  # how the access log names the reads these mails make


def N_(message: str) -> str:
    """Marks a text for the catalogues (`make messages`), translated when a mail is built."""
    return message


PATHWAYS = {
    "employment": N_("Employment"),
    "settlement": N_("Settling in a region"),
    "training": N_("Training"),
    "entrepreneurship": N_("Entrepreneurship"),
    "cooperative_entrepreneurship": N_("Cooperative entrepreneurship"),
    "other": N_("Other"),
}
PRIORITIES = {"routine": N_("Routine"), "urgent": N_("Urgent")}


class QueuedNotice(Base):
    """A new leg to an organization that chose `daily`: mailed at `due_at` (the first 8:00 in
    its time zone after the leg was sent), then deleted."""

    __tablename__ = "referral_notice_queue"

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    to_organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    due_at: Mapped[datetime] = mapped_column(index=True)


QUEUE = table_of(QueuedNotice)


@dataclass(frozen=True)
class Recipient:
    address: str
    language: str
    # "contact:<id>" (a link to answer without an account) or "user:<id>" (the portal).
    key: str
    contact_id: uuid.UUID | None = None


def next_daily(moment: datetime, zone: str) -> datetime:
    """The first `DAILY_AT` in `zone` strictly after `moment` (UTC)."""
    local = ZoneInfo(zone)
    here = moment.astimezone(local)
    day: date = here.date()
    candidate = datetime.combine(day, DAILY_AT, tzinfo=local)
    if candidate <= here:
        candidate = datetime.combine(day + timedelta(days=1), DAILY_AT, tzinfo=local)
    return candidate.astimezone(moment.tzinfo)


def recipients_of(session: Session, organization_ids: Iterable[uuid.UUID]
                  ) -> dict[uuid.UUID, list[Recipient]]:
    """Each organization's notification recipients: contacts marked `notify_referrals` with
    an address (in the organization's language), then users who asked (in their own)."""
    ids = set(organization_ids)
    found: dict[uuid.UUID, list[Recipient]] = defaultdict(list)
    if not ids:
        return found
    languages = dict(session.execute(select(Organization.id, Organization.language)
                                     .where(Organization.id.in_(ids))).all())
    for contact in session.scalars(
            select(Contact).where(Contact.organization_id.in_(ids),
                                  Contact.notify_referrals.is_(True),
                                  Contact.email.is_not(None))
            .order_by(Contact.organization_id, Contact.id)):
        found[contact.organization_id].append(Recipient(
            str(contact.email), language_of(languages.get(contact.organization_id)),
            f"contact:{contact.id}", contact.id))
    for user in session.scalars(
            select(User).where(User.organization_id.in_(ids), User.notify_referrals.is_(True),
                               User.disabled_at.is_(None))
            .order_by(User.organization_id, User.id)):
        found[user.organization_id].append(Recipient(
            user.email, language_of(user.language), f"user:{user.id}"))
    return found


def notify(session: Session, events: Iterable[Event], now: datetime, *, secret_key: str,
           public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """Mail (or queue for the daily mail) the new legs of `events`: the fan-out's batch, in its
    transaction.  Returns how many mails were queued."""
    leg_ids = [uuid.UUID(event.subject.removeprefix("referrals/")) for event in events
               if event.type == EventType.REFERRAL_SENT.value]
    if not leg_ids:
        return 0
    legs = [leg for leg in session.scalars(select(Referral).where(Referral.id.in_(leg_ids)))
            if leg.status in OPEN_STATUSES]  # a leg closed since is no news
    if not legs:
        return 0
    organizations = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({leg.to_organization_id for leg in legs}
                            | {leg.from_organization_id for leg in legs})))}
    immediate = []
    for leg in legs:
        receiver = organizations[leg.to_organization_id]
        if receiver.referral_mails == ReferralMails.DAILY.value:
            session.execute(delete(QUEUE).where(QUEUE.c.referral_id == leg.id))
            session.execute(insert(QUEUE).values(
                referral_id=leg.id, to_organization_id=receiver.id,
                due_at=next_daily(now, receiver.time_zone or DEFAULT_TIME_ZONE)))
        else:
            immediate.append(leg)
    recipients = recipients_of(session, {leg.to_organization_id for leg in immediate})
    access_log.set_via(session, VIA)
    mails = []
    for leg in immediate:
        receiver = organizations[leg.to_organization_id]
        for recipient in recipients.get(receiver.id, []):
            texts = mail_texts(recipient.language)
            values = _leg_values(session, leg, recipient, organizations, texts,
                                 secret_key=secret_key, public_url=public_url)
            subject = texts.gettext("New referral from %(sender)s (%(pathway)s)") % values
            mails.append({"to": recipient.address, "subject": subject,
                          "text": _body(texts, values, recipient), "language": recipient.language,
                          "dedupe_key": f"new_leg:{leg.id}:{recipient.key}"})
    return queue_mails(session, mails, now=now)


def mail_daily(session: Session, now: datetime, *, secret_key: str,
               public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """The daily mails that are due: one per recipient of each organization whose 8:00 has
    come, listing its legs queued since its last one that are still open; the queued rows
    are deleted in the same transaction (on PostgreSQL, two workers take different rows).
    Returns how many mails were queued."""
    due = select(QUEUE.c.referral_id).where(QUEUE.c.due_at <= now)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    taken = list(session.execute(delete(QUEUE).where(
        QUEUE.c.referral_id.in_(due.scalar_subquery())).returning(
        QUEUE.c.referral_id, QUEUE.c.due_at)))
    if not taken:
        return 0
    legs = [leg for leg in session.scalars(
        select(Referral).where(Referral.id.in_([row.referral_id for row in taken]))
        .order_by(Referral.priority.desc(), Referral.created_at))
        if leg.status in OPEN_STATUSES]
    by_receiver: dict[uuid.UUID, list[Referral]] = defaultdict(list)
    for leg in legs:
        by_receiver[leg.to_organization_id].append(leg)
    organizations = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({leg.to_organization_id for leg in legs}
                            | {leg.from_organization_id for leg in legs})))}
    recipients = recipients_of(session, by_receiver)
    day = max(row.due_at for row in taken).date().isoformat()
    access_log.set_via(session, VIA)
    mails = []
    for receiver_id, received in by_receiver.items():
        for recipient in recipients.get(receiver_id, []):
            texts = mail_texts(recipient.language)
            values = {"num": len(received),
                      "organization": one_line(organizations[receiver_id].name)}
            subject = texts.ngettext("%(num)d new referral for %(organization)s",
                                     "%(num)d new referrals for %(organization)s",
                                     len(received)) % values
            parts = [texts.ngettext(
                "Hello,\n\nOne referral was sent to %(organization)s since yesterday's "
                "mail.\n\n",
                "Hello,\n\n%(num)d referrals were sent to %(organization)s since yesterday's "
                "mail.\n\n", len(received)) % values]
            for leg in received:
                leg_values = _leg_values(session, leg, recipient, organizations, texts,
                                         secret_key=secret_key, public_url=public_url)
                parts.append(texts.gettext("From %(sender)s:\n") % leg_values
                             + _details(texts, leg_values) + leg_values["link"] + "\n\n")
            if recipient.contact_id is not None:
                parts.append(texts.gettext(
                    "Each link lets you acknowledge, accept or decline its referral without an "
                    "account. Anyone you forward this message to can answer for "
                    "%(organization)s with them.\n\n") % values)
            parts.append(texts.gettext("Automatic message from Maillage.\n"))
            mails.append({"to": recipient.address, "subject": subject, "text": "".join(parts),
                          "language": recipient.language,
                          "dedupe_key": f"new_legs_daily:{receiver_id}:{day}:{recipient.key}"})
    return queue_mails(session, mails, now=now)


def _leg_values(session: Session, leg: Referral, recipient: Recipient,
                organizations: dict[uuid.UUID, Organization], texts: NullTranslations, *,
                secret_key: str, public_url: str) -> dict[str, Any]:
    """What a mail says of one leg, in the recipient's language."""
    receiver = organizations[leg.to_organization_id]
    zone = receiver.time_zone or DEFAULT_TIME_ZONE
    reader = Reader(session, Caller(receiver.id, recipient.key), b"")
    participant = leg.participant
    if reader.entitled(participant, leg):  # logged as a read by this recipient
        person = f"{one_line(participant.given_name)} {one_line(participant.family_name)[:1]}."
    else:
        person = texts.gettext("(not shown: the participant's consent does not cover your "
                               "organization)")
    due = leg.acknowledge_by
    needed_by = getattr(leg, "needed_by", None)  # design §12, where legs carry it
    if recipient.contact_id is not None:
        url = links.link(public_url, links.make_token(secret_key, leg.id, recipient.contact_id))
    else:
        url = leg_link(public_url, leg.id)
    return {
        "sender": one_line(organizations[leg.from_organization_id].name),
        "organization": one_line(receiver.name),
        "pathway": texts.gettext(PATHWAYS.get(leg.pathway, leg.pathway)),
        "priority": texts.gettext(PRIORITIES.get(leg.priority, leg.priority)),
        "person": person,
        "due": mail_time(due, zone, recipient.language) if due else "—",
        "zone": zone,
        "needed_by": (texts.gettext("Needed by: %(date)s\n") % {
                          "date": mail_date(needed_by, recipient.language)}
                      if needed_by else ""),
        "link": url,
        "reference": str(leg.id),
    }


def _details(texts: NullTranslations, values: dict[str, Any]) -> str:
    return texts.gettext(
        "Person: %(person)s\n"
        "Pathway: %(pathway)s\n"
        "Priority: %(priority)s\n"
        "Acknowledge by: %(due)s (%(zone)s)\n"
        "%(needed_by)s") % values


def _body(texts: NullTranslations, values: dict[str, Any], recipient: Recipient) -> str:
    if recipient.contact_id is None:
        how = texts.gettext("Open it in the portal:\n%(link)s\n") % values
    else:
        how = texts.gettext(
            "Acknowledge, accept or decline it from this link, without an account:\n"
            "%(link)s\n\n"
            "Anyone you forward this message to can answer this referral for %(organization)s "
            "with the link. It works until the referral is closed, at most 30 days.\n") % values
    return texts.gettext(
        "Hello,\n\n"
        "%(sender)s sent a referral to %(organization)s.\n\n") % values + _details(
            texts, values) + "\n" + how + "\n" + texts.gettext(
        "Automatic message from Maillage. Reference: %(reference)s\n") % values
