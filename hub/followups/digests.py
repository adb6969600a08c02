"""The missed-deadline digest: one mail per recipient of a receiving organization per scheduler
tick (its directory contacts, and its portal users who asked for it on the inbox page, each in
their language), listing the legs to that organization that missed a deadline since the last
digest.

Why a digest: a receiving organization behind on its inbox would otherwise get one mail per
late leg (and a scheduler clearing a backlog, thousands); one list, in its language and time
zone, is what its staff can act on, and what the tick can afford (`bench/checks.md`).

How it stays exactly once: whoever records a `referral.deadline_missed` event (the firing
check of `hub.followups.leg_checks`, the participant's "No" of `hub.followups.checkins`) adds,
in the same transaction, a narrow row to `deadline_digest_queue`: the event's position, the
leg, both organizations, the check and its due time.  After the firing passes of a tick,
`mail_digests` takes the queued rows (PostgreSQL: locked, SKIP LOCKED, so a second scheduler
takes none of them), queues the mails and deletes the rows, in one transaction: a row is
mailed about once, whatever fails between the firing and the digest (it waits for the next
tick), and two digests never share one.  Each mail's dedupe key names its contact and the
events' span, a last defence against queueing one twice.  The queue, not the event log,
because the event's JSON snapshot costs far more to read back (PostgreSQL parses the text at
each access) than these few columns cost to write.

No participant data: references, organizations' names, checks, due times and portal links.
Texts come from the portal's catalogues, in the receiving organization's language
(`hub.followups.staff_mails.mail_texts`).
"""

from __future__ import annotations

import heapq
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from gettext import NullTranslations
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    ForeignKey,
    String,
    Uuid,
    delete,
    exists,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.accounts.users import User
from hub.db import Base, UTCDateTime, table_of
from hub.directory.organizations import Organization
from hub.events.store import Position
from hub.followups.deadlines import DEFAULT_TIME_ZONE
from hub.followups.staff_mails import (
    DEFAULT_PUBLIC_URL,
    contacts_of,
    language_of,
    leg_link,
    mail_date,
    mail_texts,
    mail_time,
    one_line,
    organizations_by_id,
)
from hub.outbox.mail import queue_mails
from hub.referrals.legs import Referral

log = logging.getLogger(__name__)

# Misses mailed by one digest: more than a tick fires (10 passes of 1,500 legs), so a tick
# gives one mail per contact; a longer backlog is mailed over the next ticks.
MISSES_PER_DIGEST = 20_000
# Legs listed in one mail; the rest are in the portal's inbox, overdue ones marked.
LINES_PER_MAIL = 30


class QueuedMiss(Base):
    """A `referral.deadline_missed` event not mailed about yet: what its line in a digest
    needs, written with the event, deleted by the digest that mails it."""

    __tablename__ = "deadline_digest_queue"

    event_position: Mapped[int] = mapped_column(Position, ForeignKey("events.position"),
                                                primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    from_organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    to_organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    check: Mapped[str] = mapped_column(String(20))  # acknowledge, decide, start, first_contact
    # The deadline; for the participant's "No", when they answered.
    due_at: Mapped[datetime]
    from_participant: Mapped[bool] = mapped_column(Boolean, default=False)


QUEUE = table_of(QueuedMiss)


def queue_misses(session: Session, misses: Iterable[dict[str, Any]]) -> None:
    """Queue misses just recorded, in the caller's transaction: dicts of `QueuedMiss`'s
    columns (SQLite's firing and the participant's "No"; PostgreSQL's firing statement
    inserts its rows itself, `hub.followups.leg_checks._FIRE_MISSED`)."""
    rows = list(misses)
    if rows:
        session.connection().execute(insert(QUEUE), rows)


def digests_pending(now: datetime) -> Any:
    """Whether `mail_digests` has misses to mail (`hub.followups.tick.pending` asks it with
    the others, in the tick's one query): the first entry of the queue's primary key.  `now`
    is unused: what is pending is what was recorded."""
    return exists().where(QueuedMiss.event_position.is_not(None))


def mail_digests(session: Session, now: datetime, limit: int = MISSES_PER_DIGEST, *,
                 public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """Take the queued misses (the oldest `limit`), queue one digest per contact of each
    receiving organization (its links starting with `public_url`, HUB_PUBLIC_URL), delete
    what was taken; returns how many mails were queued.  In the caller's transaction, which
    must commit or roll back as a whole."""
    if session.get_bind().dialect.name == "postgresql":
        return _take_in_sql(session, now, limit, public_url)
    oldest = select(QUEUE.c.event_position).order_by(QUEUE.c.event_position).limit(limit)
    taken = list(session.connection().execute(
        delete(QUEUE).where(QUEUE.c.event_position.in_(oldest.scalar_subquery()))
        .returning(*QUEUE.c)))
    if not taken:
        return 0
    positions = [row.event_position for row in taken]
    return _queue(session, taken, f"{min(positions)}-{max(positions)}", now, public_url)


# PostgreSQL: the misses taken (the oldest, locked, SKIP LOCKED: another digest's are its
# own) and deleted in one statement, which sends back only the lines the mails show: the
# `LINES_PER_MAIL` oldest deadlines of each receiver with a contact, with its count of misses
# and the span of positions mailed about (for the dedupe keys).  A tick of 10,000 misses
# brings back a few thousand narrow rows, none when no receiver lists a contact.
_TAKE = text("""
WITH taken AS (
    DELETE FROM deadline_digest_queue
    WHERE event_position IN (SELECT event_position FROM deadline_digest_queue
                             ORDER BY event_position LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING *
), mailed AS (
    SELECT taken.*,
           row_number() OVER (PARTITION BY to_organization_id
                              ORDER BY due_at, event_position) AS line,
           count(*) OVER (PARTITION BY to_organization_id) AS misses,
           min(event_position) OVER () AS first_position,
           max(event_position) OVER () AS last_position
    FROM taken
    WHERE to_organization_id IN (SELECT organization_id FROM directory_contacts
                                 WHERE email IS NOT NULL AND deadline_digests)
       OR to_organization_id IN (SELECT organization_id FROM users
                                 WHERE deadline_digests AND disabled_at IS NULL)
)
SELECT event_position, referral_id, from_organization_id, to_organization_id, "check",
       due_at, from_participant, misses, first_position, last_position
FROM mailed WHERE line <= :lines
""").columns(due_at=UTCDateTime())


def _take_in_sql(session: Session, now: datetime, limit: int, public_url: str) -> int:
    shown = list(session.connection().execute(_TAKE, {"limit": limit,
                                                      "lines": LINES_PER_MAIL}))
    if not shown:
        return 0
    totals = {row.to_organization_id: row.misses for row in shown}
    span = f"{shown[0].first_position}-{shown[0].last_position}"
    return _queue(session, shown, span, now, public_url, totals)


def _queue(session: Session, misses: list[Any], span: str, now: datetime, public_url: str,
           totals: dict[uuid.UUID, int] | None = None) -> int:
    """One mail per recipient of each receiving organization with misses and recipients;
    `totals`: each receiver's count of misses, when `misses` are only the lines shown."""
    by_receiver: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for miss in misses:
        by_receiver[miss.to_organization_id].append(miss)
    organizations = organizations_by_id(session, by_receiver)
    recipients = _recipients(session, organizations)
    if not recipients:
        return 0
    organizations |= organizations_by_id(session, {
        miss.from_organization_id for receiver in recipients
        for miss in by_receiver[receiver]} - set(organizations))
    names = {organization_id: one_line(organization.name)
             for organization_id, organization in organizations.items()}
    needed_by = _needed_by(session, {miss.referral_id for receiver in recipients
                                     for miss in by_receiver[receiver]})
    mails = []
    for receiver_id, listed in recipients.items():
        receiver = organizations[receiver_id]
        texts: dict[str, tuple[str, str]] = {}  # one digest per language of its recipients
        for address, language, key in listed:
            if language not in texts:
                texts[language] = digest(
                    by_receiver[receiver_id], receiver.name, language,
                    receiver.time_zone or DEFAULT_TIME_ZONE, names,
                    (totals or {}).get(receiver_id), public_url=public_url,
                    needed_by=needed_by)
            subject, body = texts[language]
            mails.append({"to": address, "subject": subject, "text": body,
                          "language": language,
                          "dedupe_key": f"deadline_digest:{key}:{span}"})
    return queue_mails(session, mails, now=now)


def _recipients(session: Session, receivers: dict[uuid.UUID, Organization]
                ) -> dict[uuid.UUID, list[tuple[str, str, str]]]:
    """(address, language, key) of each receiving organization's digest recipients: its
    directory contacts with an address who did not turn the digests off (design §14), in the
    organization's language, and its portal users who asked for them (on the inbox page), in
    their own.  A user who is also a contact at the same address gets one mail."""
    found: dict[uuid.UUID, list[tuple[str, str, str]]] = defaultdict(list)
    if not receivers:
        return found
    languages = {o.id: language_of(o.language) for o in receivers.values()}
    for receiver, staff in contacts_of(session, receivers).items():
        found[receiver].extend((c.email, languages[receiver], str(c.id)) for c in staff
                               if c.email and c.deadline_digests)
    for user in session.scalars(select(User).where(
            User.organization_id.in_(list(receivers)), User.deadline_digests.is_(True),
            User.disabled_at.is_(None)).order_by(User.id)):
        if user.email not in {address.lower() for address, _, _ in found[user.organization_id]}:
            found[user.organization_id].append(
                (user.email, language_of(user.language), f"user:{user.id}"))
    return {receiver: listed for receiver, listed in found.items() if listed}


def _needed_by(session: Session, referral_ids: set[uuid.UUID]) -> dict[uuid.UUID, date]:
    """The dates the legs mailed about are needed by, for those that have one (§12)."""
    if not referral_ids:
        return {}
    rows = session.execute(select(Referral.id, Referral.needed_by).where(
        Referral.id.in_(referral_ids), Referral.needed_by.is_not(None)))
    return {referral_id: day for referral_id, day in rows if day is not None}


def digest(misses: list[Any], receiver: str, language: str, zone: str,
           names: dict[uuid.UUID, str], total: int | None = None, *,
           public_url: str = DEFAULT_PUBLIC_URL,
           needed_by: dict[uuid.UUID, date] | None = None) -> tuple[str, str]:
    """The subject and text of one receiving organization's digest: the oldest deadlines
    first, at most `LINES_PER_MAIL` of them, the rest (of `total`, or of `misses`) counted and
    left to the portal."""
    texts = mail_texts(language)
    count = total or len(misses)
    shown = heapq.nsmallest(LINES_PER_MAIL, misses,
                            key=lambda miss: (miss.due_at, miss.event_position))
    local = ZoneInfo(zone)
    checks = _check_names(texts)
    lines = "".join(_line(miss, texts, checks, local, language, names, public_url)
                    + _needed_by_line(texts, language,
                                                    (needed_by or {}).get(miss.referral_id))
                    for miss in shown)
    rest = count - len(shown)
    organization = one_line(receiver)
    values = {"organization": organization, "num": count, "zone": zone,
              "lines": lines + ("\n" if lines else ""),
              "more": texts.ngettext(
                  "… and one more, in the list of inbound referrals.\n\n",
                  "… and %(num)d more, in the list of inbound referrals.\n\n",
                  rest) % {"num": rest} if rest else "",
              "inbox": f"{public_url.rstrip('/')}/inbox"}
    values["summary"] = texts.ngettext(
        "One referral to %(organization)s missed a deadline",
        "%(num)d referrals to %(organization)s missed a deadline", count) % values
    subject = texts.ngettext("%(num)d referral to %(organization)s missed a deadline",
                             "%(num)d referrals to %(organization)s missed a deadline",
                             count) % values
    return subject, texts.gettext(
        "Hello,\n\n"
        "%(summary)s (times in %(zone)s):\n\n"
        "%(lines)s"
        "%(more)s"
        "Open each referral in the portal to act on it; the list of inbound referrals "
        "(overdue ones marked):\n%(inbox)s\n\n"
        "This automatic message from Maillage holds no data about the people referred.\n"
    ) % values


def _check_names(texts: NullTranslations) -> dict[str, str]:
    """What a digest line calls each deadline (an unknown check keeps its code)."""
    return {"acknowledge": texts.gettext("acknowledgement"),
            "decide": texts.gettext("the decision (accept or decline)"),
            "start": texts.gettext("the first contact with the person")}


def _needed_by_line(texts: NullTranslations, language: str, day: date | None) -> str:
    if day is None:
        return ""
    return texts.gettext("  The person is needed there by %(date)s.\n") % {
        "date": mail_date(day, language)}


def _line(miss: Any, texts: NullTranslations, checks: dict[str, str], zone: ZoneInfo,
          language: str, names: dict[uuid.UUID, str], public_url: str) -> str:
    values = {"reference": str(miss.referral_id),
              "sender": names.get(miss.from_organization_id, "?"),
              "due": mail_time(miss.due_at, zone, language),
              "link": leg_link(public_url, miss.referral_id),
              "check": checks.get(miss.check, miss.check)}
    if miss.from_participant:
        return texts.gettext(
            "- Referral %(reference)s, received from %(sender)s: the person says nobody "
            "contacted them (answered %(due)s)\n  %(link)s\n") % values
    return texts.gettext(
        "- Referral %(reference)s, received from %(sender)s: %(check)s was due by %(due)s\n"
        "  %(link)s\n") % values
