"""The missed-deadline digest: one mail per contact of a receiving organization per scheduler
tick, listing the legs to that organization that missed a deadline since the last digest.

Why a digest: a receiving organization behind on its inbox would otherwise get one mail per
late leg (and a scheduler clearing a backlog, thousands); one list, in its language and time
zone, is what its staff can act on, and what the tick can afford (`bench/checks.md`).

How it stays exactly once: whoever records a `referral.deadline_missed` event (the firing
check of `hub.followups.leg_checks`, the participant's "No" of `hub.followups.checkins`) adds, in the same
transaction, a narrow row to `deadline_digest_queue`: the event's position, the leg, both
organizations, the check and its due time.  After the firing passes of a tick, `mail_digests`
takes the queued rows (PostgreSQL: locked, SKIP LOCKED, so a second scheduler takes none of
them), queues the mails and deletes the rows, in one transaction: a row is mailed about once,
whatever fails between the firing and the digest (it waits for the next tick), and two
digests never share one.  Each mail's dedupe key names its contact and the events' span, a
last defence against queueing one twice.  The queue, not the event log, because the event's
JSON snapshot costs far more to read back (PostgreSQL parses the text at each access) than
these few columns cost to write.

No participant data: references, organizations' names, checks, due times and portal links.
"""

from __future__ import annotations

import heapq
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, ForeignKey, String, Uuid, delete, exists, insert, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.db import Base, UTCDateTime
from hub.events.store import Position
from hub.followups.deadlines import DEFAULT_TIME_ZONE
from hub.followups.staff_mails import (
    contacts_of,
    language_of,
    one_line,
    organizations_by_id,
    public_url,
)
from hub.outbox.mail import queue_mails

log = logging.getLogger(__name__)

# Misses mailed by one digest: more than a tick fires (10 passes of 1,500 legs), so a tick
# gives one mail per contact; a longer backlog is mailed over the next ticks.
MISSES_PER_DIGEST = 20_000
# Legs listed in one mail; the rest are in the portal's inbox, overdue ones marked.
LINES_PER_MAIL = 30
TIME_FORMAT = "%Y-%m-%d %H:%M"  # in the receiving organization's zone, named once per mail


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


def queue_misses(session: Session, misses: Iterable[dict[str, Any]]) -> None:
    """Queue misses just recorded, in the caller's transaction: dicts of `QueuedMiss`'s
    columns (SQLite's firing and the participant's "No"; PostgreSQL's firing statement
    inserts its rows itself, `hub.followups.leg_checks._FIRE_MISSED`)."""
    rows = list(misses)
    if rows:
        session.connection().execute(insert(QueuedMiss.__table__), rows)


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


def digests_pending(now: datetime) -> Any:
    """Whether `mail_digests` has misses to mail (`hub.followups.tick.pending` asks it with the others,
    in the tick's one query): the first entry of the queue's primary key.  `now` is unused:
    what is pending is what was recorded."""
    return exists().where(QueuedMiss.event_position.is_not(None))


def mail_digests(session: Session, now: datetime, limit: int = MISSES_PER_DIGEST) -> int:
    """Take the queued misses (the oldest `limit`), queue one digest per contact of each
    receiving organization, delete what was taken; returns how many mails were queued.  In the
    caller's transaction, which must commit or roll back as a whole."""
    if session.get_bind().dialect.name == "postgresql":
        return _take_in_sql(session, now, limit)
    queue = QueuedMiss.__table__
    oldest = select(queue.c.event_position).order_by(queue.c.event_position).limit(limit)
    taken = session.connection().execute(
        delete(queue).where(queue.c.event_position.in_(oldest.scalar_subquery()))
        .returning(*queue.c)).all()
    if not taken:
        return 0
    positions = [row.event_position for row in taken]
    return _queue(session, taken, f"{min(positions)}-{max(positions)}", now)


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
                                 WHERE email IS NOT NULL)
)
SELECT event_position, referral_id, from_organization_id, to_organization_id, "check",
       due_at, from_participant, misses, first_position, last_position
FROM mailed WHERE line <= :lines
""").columns(due_at=UTCDateTime())


def _take_in_sql(session: Session, now: datetime, limit: int) -> int:
    shown = session.connection().execute(_TAKE, {"limit": limit,
                                                 "lines": LINES_PER_MAIL}).all()
    if not shown:
        return 0
    totals = {row.to_organization_id: row.misses for row in shown}
    span = f"{shown[0].first_position}-{shown[0].last_position}"
    return _queue(session, shown, span, now, totals)


def _queue(session: Session, misses: list[Any], span: str, now: datetime,
           totals: dict[uuid.UUID, int] | None = None) -> int:
    """One mail per contact of each receiving organization with misses and contacts;
    `totals`: each receiver's count of misses, when `misses` are only the lines shown."""
    by_receiver: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for miss in misses:
        by_receiver[miss.to_organization_id].append(miss)
    contacts = contacts_of(session, by_receiver)
    if not contacts:
        return 0
    organizations = organizations_by_id(session, set(contacts) | {
        miss.from_organization_id for receiver in contacts for miss in by_receiver[receiver]})
    names = {organization_id: one_line(organization.name)
             for organization_id, organization in organizations.items()}
    mails = []
    for receiver_id, staff in contacts.items():
        receiver = organizations[receiver_id]
        language = language_of(receiver.language)
        subject, body = digest(by_receiver[receiver_id], receiver.name, language,
                               receiver.time_zone or DEFAULT_TIME_ZONE, names,
                               (totals or {}).get(receiver_id))
        for contact in staff:
            mails.append({"to": contact.email, "subject": subject, "text": body,
                          "language": language,
                          "dedupe_key": f"deadline_digest:{contact.id}:{span}"})
    return queue_mails(session, mails, now=now)


def digest(misses: list[Any], receiver: str, language: str, zone: str,
           names: dict[uuid.UUID, str], total: int | None = None) -> tuple[str, str]:
    """The subject and text of one receiving organization's digest: the oldest deadlines
    first, at most `LINES_PER_MAIL` of them, the rest (of `total`, or of `misses`) counted and
    left to the portal."""
    texts = TEXTS[language]
    count = total or len(misses)
    shown = heapq.nsmallest(LINES_PER_MAIL, misses,
                            key=lambda miss: (miss.due_at, miss.event_position))
    base = public_url()
    local = ZoneInfo(zone)
    lines = "".join(_line(miss, language, local, names, base) for miss in shown)
    rest = count - len(shown)
    values = {"organization": one_line(receiver), "count": str(count), "zone": zone,
              "lines": lines + ("\n" if lines else ""),
              "more": texts["more_one" if rest == 1 else "more"].format(rest=rest) if rest
              else "",
              "inbox": f"{base}/inbox"}
    one = "_one" if count == 1 else ""
    values["summary"] = texts[f"summary{one}"].format(**values)
    return texts[f"digest_subject{one}"].format(**values), texts["digest"].format(**values)


def _line(miss: Any, language: str, zone: ZoneInfo, names: dict[uuid.UUID, str],
          base: str) -> str:
    texts = TEXTS[language]
    values = {"reference": str(miss.referral_id),
              "sender": names.get(miss.from_organization_id, "?"),
              "due": miss.due_at.astimezone(zone).strftime(TIME_FORMAT),
              "link": f"{base}/legs/{miss.referral_id}"}
    if miss.from_participant:
        return texts["participant_line"].format(**values)
    return texts["line"].format(check=CHECK_NAMES[language].get(miss.check, miss.check),
                                **values)
