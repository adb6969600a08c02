"""The missed-deadline digest: one mail per contact of a receiving organization per scheduler
tick, listing the legs to that organization that missed a deadline since the last digest.

Why a digest: a receiving organization behind on its inbox would otherwise get one mail per
late leg (and a scheduler clearing a backlog, thousands); one list, in its language and time
zone, is what its staff can act on, and what the tick can afford (`bench/checks.md`).

How it stays exactly once: the firing checks only record `referral.deadline_missed` events
(`hub.followups`, and the participant's "No" of `hub.checkins`).  After the firing passes of
a tick, `mail_digests` reads those events after a stored cursor, in the feed's global order
(`hub.events.feed`: on PostgreSQL only events of finished transactions), queues the mails and
moves the cursor on, in one transaction.  The cursor row is locked (PostgreSQL) and moved on
only from where it was read (every backend): a second scheduler, or a retry after a crash,
starts where the committed digest stopped, so an event is mailed about once, whatever fails
between the firing and the digest.  Each mail's dedupe key names its contact and the cursor
range, a last defence against queueing one twice.

No participant data: references, organizations' names, checks, due times and portal links.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String, exists, select, tuple_, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.check_mails import (
    contacts_of,
    language_of,
    leg_link,
    local_time,
    one_line,
    organizations_by_id,
    public_url,
)
from hub.db import Base
from hub.deadlines import DEFAULT_TIME_ZONE
from hub.events import EventType
from hub.events.store import Event, oldest_running_transaction_id
from hub.mail import queue_mails

log = logging.getLogger(__name__)

MISSED = EventType.REFERRAL_DEADLINE_MISSED.value
# Events read by one digest: more than a tick fires (10 passes of 1,500 legs), so a tick gives
# one mail per contact; a longer backlog is mailed over the next ticks.
EVENTS_PER_DIGEST = 20_000
# Legs listed in one mail; the rest are in the portal's inbox, overdue ones marked.
LINES_PER_MAIL = 30

# What digests have read so far: only the events after it are still to mail about.
Index("ix_events_deadline_missed", Event.__table__.c.transaction_order,
      Event.__table__.c.position,
      postgresql_where=Event.__table__.c.type == MISSED,
      sqlite_where=Event.__table__.c.type == MISSED)


class DigestCursor(Base):
    """How far a digest has read the event log: the (transaction_order, position) of the last
    event it mailed about (the feed's order, `hub.events.feed.FeedCursor`)."""

    __tablename__ = "mail_digest_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # the event type
    transaction_order: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


CHECK_NAMES = {
    "fr": {"acknowledge": "l'accusé de réception", "decide": "la décision (acceptation ou refus)",
           "start": "le premier contact avec la personne"},
    "en": {"acknowledge": "acknowledgement", "decide": "the decision (accept or decline)",
           "start": "the first contact with the person"},
}

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "digest_subject_one": "1 demande adressée à {organization} a dépassé un délai",
        "digest_subject": "{count} demandes adressées à {organization} ont dépassé un délai",
        "digest": (
            "Bonjour,\n\n"
            "{summary} (heures de {zone}) :\n\n"
            "{lines}"
            "{more}"
            "Ouvrez chaque demande dans le portail pour y donner suite ; la liste des "
            "demandes reçues (en retard signalées) :\n{inbox}\n\n"
            "Ce message automatique de Maillage ne contient aucune donnée sur les personnes "
            "référées.\n"),
        "summary_one": "Une demande adressée à {organization} a dépassé un délai",
        "summary": "{count} demandes adressées à {organization} ont dépassé un délai",
        "line": "- Demande {reference}, reçue de {sender} : échéance pour {check} le {due}\n"
                "  {link}\n",
        "participant_line": "- Demande {reference}, reçue de {sender} : la personne dit ne pas "
                            "avoir été contactée (réponse du {due})\n  {link}\n",
        "more_one": "… et une autre, dans la liste des demandes reçues.\n\n",
        "more": "… et {rest} autres, dans la liste des demandes reçues.\n\n",
    },
    "en": {
        "digest_subject_one": "1 referral to {organization} missed a deadline",
        "digest_subject": "{count} referrals to {organization} missed a deadline",
        "digest": (
            "Hello,\n\n"
            "{summary} (times in {zone}):\n\n"
            "{lines}"
            "{more}"
            "Open each referral in the portal to act on it; the list of inbound referrals "
            "(overdue ones marked):\n{inbox}\n\n"
            "This automatic message from Maillage holds no data about the people referred.\n"),
        "summary_one": "One referral to {organization} missed a deadline",
        "summary": "{count} referrals to {organization} missed a deadline",
        "line": "- Referral {reference}, received from {sender}: {check} was due by {due}\n"
                "  {link}\n",
        "participant_line": "- Referral {reference}, received from {sender}: the person says "
                            "nobody contacted them (answered {due})\n  {link}\n",
        "more_one": "… and one more, in the list of inbound referrals.\n\n",
        "more": "… and {rest} more, in the list of inbound referrals.\n\n",
    },
}


@dataclass(frozen=True)
class MissedDeadline:
    """One `referral.deadline_missed` event, as a digest lists it."""

    leg_id: uuid.UUID
    from_organization_id: uuid.UUID
    to_organization_id: uuid.UUID
    check: str  # acknowledge, decide, start; first_contact from the participant
    due_at: datetime  # the deadline; the participant's answer for `source: participant`
    from_participant: bool


def _after_cursor() -> list[Any]:
    """The missed-deadline events after the cursor, of finished transactions (PostgreSQL)."""
    return [DigestCursor.name == MISSED, Event.type == MISSED,
            tuple_(Event.transaction_order, Event.position)
            > tuple_(DigestCursor.transaction_order, DigestCursor.position)]


def digests_pending(now: datetime) -> Any:
    """Whether `mail_digests` has events to read (`hub.checks.pending` asks it with the others,
    in the tick's one query): a range scan of the partial index `ix_events_deadline_missed`
    from the cursor.  `now` is unused: what is pending is what was recorded."""
    return exists().where(*_after_cursor())


def mail_digests(session: Session, now: datetime, limit: int = EVENTS_PER_DIGEST) -> int:
    """Read the missed-deadline events after the cursor (up to `limit`), queue one digest per
    contact of each receiving organization, move the cursor on; returns how many mails were
    queued.  In the caller's transaction, which must commit or roll back as a whole."""
    postgres = session.get_bind().dialect.name == "postgresql"
    query = select(DigestCursor).where(DigestCursor.name == MISSED)
    cursor = session.scalars(query.with_for_update() if postgres else query).one_or_none()
    if cursor is None:  # a database made without the migration's row: from the beginning
        cursor = DigestCursor(name=MISSED, transaction_order=0, position=0, updated_at=now)
        session.add(cursor)
        session.flush()
    start = (cursor.transaction_order, cursor.position)
    referral = ("referral",)
    events = select(
        Event.transaction_order, Event.position, Event.time,
        Event.data[(*referral, "id")].as_string().label("leg_id"),
        Event.data[(*referral, "from_organization_id")].as_string().label("sender"),
        Event.data[(*referral, "to_organization_id")].as_string().label("receiver"),
        Event.data[("check",)].as_string().label("check"),
        Event.data[("due_at",)].as_string().label("due_at"),
        Event.data[("source",)].as_string().label("source"),
    ).where(Event.type == MISSED,
            tuple_(Event.transaction_order, Event.position) > tuple_(*start))
    if postgres:
        events = events.where(Event.transaction_order < oldest_running_transaction_id())
    rows = session.execute(events.order_by(Event.transaction_order, Event.position)
                           .limit(limit)).all()
    if not rows:
        return 0
    end = (rows[-1].transaction_order, rows[-1].position)
    missed = [one for one in map(_missed, rows) if one is not None]
    queued = _queue(session, missed, f"{start[0]}.{start[1]}-{end[0]}.{end[1]}", now)
    moved = session.execute(
        update(DigestCursor)
        .where(DigestCursor.name == MISSED, DigestCursor.transaction_order == start[0],
               DigestCursor.position == start[1])
        .values(transaction_order=end[0], position=end[1], updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if moved != 1:  # another digest moved it since it was read: its mails stand, not these
        raise RuntimeError("the missed-deadline digest cursor moved meanwhile; rolled back")
    return queued


def _missed(row: Any) -> MissedDeadline | None:
    """The event's leg, or None (logged) for an event without the referral snapshot the hub
    writes: skipped, so that it cannot hold every later digest up."""
    try:
        due_at = (datetime.fromisoformat(row.due_at.replace("Z", "+00:00")).astimezone(UTC)
                  if row.due_at else row.time)
        return MissedDeadline(uuid.UUID(row.leg_id), uuid.UUID(row.sender),
                              uuid.UUID(row.receiver), row.check or "", due_at,
                              row.source == "participant")
    except (TypeError, ValueError, AttributeError):
        log.warning("missed-deadline event at position %s names no leg; not mailed",
                    row.position)
        return None


def _queue(session: Session, missed: list[MissedDeadline], span: str, now: datetime) -> int:
    """One mail per contact of each receiving organization with missed legs and contacts."""
    by_receiver: dict[uuid.UUID, list[MissedDeadline]] = defaultdict(list)
    for one in missed:
        by_receiver[one.to_organization_id].append(one)
    contacts = contacts_of(session, by_receiver)
    if not contacts:
        return 0
    organizations = organizations_by_id(session, set(contacts) | {
        one.from_organization_id for receiver in contacts for one in by_receiver[receiver]})
    mails = []
    for receiver_id, staff in contacts.items():
        receiver = organizations[receiver_id]
        language = language_of(receiver.language)
        subject, text = digest(by_receiver[receiver_id], receiver.name, language,
                               receiver.time_zone or DEFAULT_TIME_ZONE,
                               {i: o.name for i, o in organizations.items()})
        for contact in staff:
            mails.append({"to": contact.email, "subject": subject, "text": text,
                          "language": language,
                          "dedupe_key": f"deadline_digest:{contact.id}:{span}"})
    return queue_mails(session, mails, now=now)


def digest(missed: list[MissedDeadline], receiver: str, language: str, zone: str,
           names: dict[uuid.UUID, str]) -> tuple[str, str]:
    """The subject and text of one receiving organization's digest: the oldest deadlines
    first, at most `LINES_PER_MAIL` of them, the rest counted and left to the portal."""
    texts = TEXTS[language]
    ordered = sorted(missed, key=lambda one: (one.due_at, str(one.leg_id)))
    shown = ordered[:LINES_PER_MAIL]
    lines = "".join(_line(one, language, zone, names) for one in shown)
    rest = len(ordered) - len(shown)
    values = {"organization": one_line(receiver), "count": str(len(ordered)), "zone": zone,
              "lines": lines + ("\n" if lines else ""),
              "more": texts["more_one" if rest == 1 else "more"].format(rest=rest) if rest
              else "",
              "inbox": f"{public_url()}/inbox"}
    one = "_one" if len(ordered) == 1 else ""
    values["summary"] = texts[f"summary{one}"].format(**values)
    return texts[f"digest_subject{one}"].format(**values), texts["digest"].format(**values)


def _line(one: MissedDeadline, language: str, zone: str, names: dict[uuid.UUID, str]) -> str:
    texts = TEXTS[language]
    values = {"reference": str(one.leg_id), "sender": one_line(
        names.get(one.from_organization_id, "?")), "due": local_time(one.due_at, zone),
        "link": leg_link(one.leg_id)}
    if one.from_participant:
        return texts["participant_line"].format(**values)
    return texts["line"].format(check=CHECK_NAMES[language].get(one.check, one.check),
                                **values)
