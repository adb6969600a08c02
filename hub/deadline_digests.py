"""The missed-deadline digest: one mail per contact of a receiving organization per scheduler
tick, listing the legs to that organization that missed a deadline since the last digest.

Why a digest: a receiving organization behind on its inbox would otherwise get one mail per
late leg (and a scheduler clearing a backlog, thousands); one list, in its language and time
zone, is what its staff can act on, and what the tick can afford (`bench/checks.md`).

How it stays exactly once: whoever records a `referral.deadline_missed` event (the firing
check of `hub.followups`, the participant's "No" of `hub.checkins`) adds, in the same
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

from sqlalchemy import Boolean, ForeignKey, String, Uuid, delete, exists, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.check_mails import (
    contacts_of,
    language_of,
    one_line,
    organizations_by_id,
    public_url,
)
from hub.db import Base
from hub.deadlines import DEFAULT_TIME_ZONE
from hub.events.store import Position
from hub.mail import queue_mails

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
    inserts its rows itself, `hub.followups._FIRE_MISSED`)."""
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
    """Whether `mail_digests` has misses to mail (`hub.checks.pending` asks it with the others,
    in the tick's one query): the first entry of the queue's primary key.  `now` is unused:
    what is pending is what was recorded."""
    return exists().where(QueuedMiss.event_position.is_not(None))


def mail_digests(session: Session, now: datetime, limit: int = MISSES_PER_DIGEST) -> int:
    """Take the queued misses (the oldest `limit`), queue one digest per contact of each
    receiving organization, delete what was taken; returns how many mails were queued.  In the
    caller's transaction, which must commit or roll back as a whole."""
    queue = QueuedMiss.__table__
    oldest = select(queue.c.event_position).order_by(queue.c.event_position).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)  # another digest's are its own
    taken = session.connection().execute(
        delete(queue).where(queue.c.event_position.in_(oldest.scalar_subquery()))
        .returning(*queue.c)).all()
    if not taken:
        return 0
    positions = [row.event_position for row in taken]
    span = f"{min(positions)}-{max(positions)}"
    return _queue(session, taken, span, now)


def _queue(session: Session, misses: list[Any], span: str, now: datetime) -> int:
    """One mail per contact of each receiving organization with misses and contacts."""
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
        subject, text = digest(by_receiver[receiver_id], receiver.name, language,
                               receiver.time_zone or DEFAULT_TIME_ZONE, names)
        for contact in staff:
            mails.append({"to": contact.email, "subject": subject, "text": text,
                          "language": language,
                          "dedupe_key": f"deadline_digest:{contact.id}:{span}"})
    return queue_mails(session, mails, now=now)


def digest(misses: list[Any], receiver: str, language: str, zone: str,
           names: dict[uuid.UUID, str]) -> tuple[str, str]:
    """The subject and text of one receiving organization's digest: the oldest deadlines
    first, at most `LINES_PER_MAIL` of them, the rest counted and left to the portal."""
    texts = TEXTS[language]
    shown = heapq.nsmallest(LINES_PER_MAIL, misses,
                            key=lambda miss: (miss.due_at, miss.event_position))
    base = public_url()
    local = ZoneInfo(zone)
    lines = "".join(_line(miss, language, local, names, base) for miss in shown)
    rest = len(misses) - len(shown)
    values = {"organization": one_line(receiver), "count": str(len(misses)), "zone": zone,
              "lines": lines + ("\n" if lines else ""),
              "more": texts["more_one" if rest == 1 else "more"].format(rest=rest) if rest
              else "",
              "inbox": f"{base}/inbox"}
    one = "_one" if len(misses) == 1 else ""
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
