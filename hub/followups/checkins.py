"""Participant check-ins: a few business days after a leg is accepted, the hub asks the person
themself, by mail, whether the receiving organization contacted them, and a "No" becomes a
`referral.deadline_missed` from the participant, to both organizations.

The mail carries a link with a single-use, expiring token and no login.  The hub keeps only a
SHA-256 of the token (`token_hash`): a copy of the database gives no working link.  The link
opens a page (`hub.portal.checkin`) that only *shows* the question; only its form's POST answers,
so a mail scanner or link preview that fetches the page answers nothing.

Asked once per leg, ever: like every follow-up check, a `referral_checks` row of kind
`checkin` is claimed first (`hub.followups.leg_checks._claim`), so two schedulers or a restart
never send a second mail.  A leg whose participant has no email or no `follow_up_contact`
consent for the sending organization is claimed too, as skipped, so it is not looked at
again.

The mail's texts are in the portal's catalogues, in French (the default) and English
(`hub.followups.staff_mails.mail_texts`); its link starts with the address the caller passes
(HUB_PUBLIC_URL, handed down by the scheduler and `hub checks run`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from gettext import NullTranslations
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CheckConstraint,
    CursorResult,
    ForeignKey,
    String,
    exists,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from hub.consent import consents
from hub.db import Base
from hub.directory.organizations import LANGUAGES, Organization
from hub.errors import ConcurrentChange
from hub.events.store import record
from hub.events.types import EventType
from hub.followups import deadlines, digests
from hub.followups.leg_checks import Due, _claim
from hub.followups.staff_mails import DEFAULT_LANGUAGE, DEFAULT_PUBLIC_URL, mail_date, mail_texts
from hub.outbox.mail import queue_mail
from hub.referrals import lifecycle
from hub.referrals.legs import LEGS, Referral, snapshot
from hub.referrals.lifecycle import Status

log = logging.getLogger(__name__)

KIND = "checkin"  # the `referral_checks` kind: one check-in per leg, ever
ASK_AFTER_BUSINESS_DAYS = deadlines.CHECKIN_AFTER_BUSINESS_DAYS  # from acceptance
# A leg accepted longer ago than this is not asked about: the question would come too late to
# help (and a hub that starts checking in does not mail about every old leg at once).
ASK_UNTIL = timedelta(days=21)
TOKEN_LIFETIME = timedelta(days=14)
ASKED_STATUSES = deadlines.CHECKIN_STATUSES  # accepted, in_progress
BATCH = 500
LOCAL_TIME_ZONE = ZoneInfo(deadlines.DEFAULT_TIME_ZONE)

# token_urlsafe(32): 32 random bytes, 43 characters.  Anything else is not one of ours.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class Answer(StrEnum):
    CONTACTED = "contacted"
    NOT_CONTACTED = "not_contacted"
    NO_LONGER_NEEDED = "no_longer_needed"


class ParticipantCheckin(Base):
    """One question mailed to a participant about one leg, and their answer."""

    __tablename__ = "participant_checkins"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), unique=True)
    # SHA-256 (hex) of the token; the token itself is only ever in the mail.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(35))  # of the mail and, by default, the page

    __table_args__ = (
        CheckConstraint("answer IS NULL OR answer IN "
                        "('contacted', 'not_contacted', 'no_longer_needed')", name="answer"),
    )

    def __repr__(self) -> str:  # never show the hash: it finds the row
        return f"<ParticipantCheckin {self.id} answer={self.answer}>"


# -- the mail ------------------------------------------------------------------------------------


def language_of(tag: str | None) -> str | None:
    """The language among LANGUAGES that a BCP 47 tag asks for ("fr-CA" -> "fr"), else None."""
    primary = (tag or "").strip().split("-")[0].split("_")[0].lower()
    return primary if primary in LANGUAGES else None


def _one_line(name: str) -> str:
    return " ".join(name.split())  # a line break in a name must never reach a mail header


def _local_date(moment: datetime, language: str) -> str:
    return mail_date(moment.astimezone(LOCAL_TIME_ZONE).date(), language)  # in Québec's time


def compose_mail(preferred_language: str | None, *, sender: str, receiver: str,
                 accepted_at: datetime, expires_at: datetime, link: str
                 ) -> tuple[str, str, str, str]:
    """(subject, text, Content-Language, page language) of the check-in mail: French or
    English as the participant prefers; any other language gets French then English."""
    def values(language: str) -> dict[str, str]:
        return {"sender": _one_line(sender), "receiver": _one_line(receiver), "link": link,
                "accepted": _local_date(accepted_at, language),
                "expires": _local_date(expires_at, language)}

    language = language_of(preferred_language)
    if language is not None:
        subject, text = _mail_in(mail_texts(language), values(language))
        return subject, text, language, language
    english = mail_texts("en")
    (french_subject, french_text), (english_subject, english_text) = (
        _mail_in(mail_texts("fr"), values("fr")), _mail_in(english, values("en")))
    # Said in English: it is for the reader who reads no French.
    below = english.gettext("— English below —")
    return (f"{french_subject} / {english_subject}",
            f"{french_text}\n\n{below}\n\n{english_text}", "fr, en", DEFAULT_LANGUAGE)


def _mail_in(texts: NullTranslations, values: dict[str, str]) -> tuple[str, str]:
    """The subject and text of the check-in mail in the language of `texts`."""
    subject = texts.gettext("Following up on your request to %(receiver)s") % values
    text = texts.gettext(
        "Hello,\n\n"
        "%(sender)s passed your request on to %(receiver)s, which accepted it on "
        "%(accepted)s.\n\n"
        "We would like to know whether %(receiver)s has contacted you. Answer in one click, "
        "no password needed:\n\n"
        "%(link)s\n\n"
        "You can answer: Yes, No, or I no longer need it. If %(receiver)s has not contacted "
        "you, we will let both organizations know.\n\n"
        "This link is personal, works once and expires on %(expires)s.\n\n"
        "You receive this message because you agreed to a follow-up of your request.\n\n"
        "— Maillage\n") % values
    return subject, text


# -- tokens --------------------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256, unkeyed: the token has 256 random bits, so nothing can be guessed from it."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def find(session: Session, token: str) -> ParticipantCheckin | None:
    """The check-in of a token, or None (malformed or unknown: the same to the caller)."""
    if not _TOKEN_SHAPE.match(token):
        return None
    return session.scalar(select(ParticipantCheckin)
                          .where(ParticipantCheckin.token_hash == hash_token(token)))


# -- the scheduled check -------------------------------------------------------------------------


def link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/suivi/{token}"


def _candidates(session: Session, now: datetime, limit: int) -> list[Referral]:
    """Legs whose check-in is due (`checkin_due_at`, set on acceptance by
    `hub.followups.deadlines.arm_checks`, cleared once asked): a range of a partial index
    holding only the legs still to ask."""
    query = (select(Referral).where(Referral.checkin_due_at <= now)
             .order_by(Referral.checkin_due_at).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Referral)
    return list(session.scalars(query))


def checkins_pending(now: datetime) -> Any:
    """Whether `checkins_due` has anything to do at `now` (see `hub.followups.tick.run_once`)."""
    return exists().where(LEGS.c.checkin_due_at <= now)


def checkins_due(session: Session, now: datetime, limit: int = BATCH, *,
                 public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """Mail the check-in question for every leg accepted ASK_AFTER_BUSINESS_DAYS business days
    ago whose participant has an email and a `follow_up_contact` consent covering the sending
    organization; each leg once, ever; the links start with `public_url` (HUB_PUBLIC_URL).
    Returns how many mails were queued."""
    names: dict[uuid.UUID, str] = {}

    def name_of(organization_id: uuid.UUID) -> str:
        if organization_id not in names:
            organization = session.get(Organization, organization_id)
            names[organization_id] = organization.name if organization else ""
        return names[organization_id]

    legs = _candidates(session, now, limit)
    # Asked about: legs still accepted or started, accepted less than ASK_UNTIL ago; the
    # others are only taken out of the index (not asked, nothing recorded).
    asked = [leg for leg in legs if leg.status in ASKED_STATUSES
             and leg.accepted_at is not None and leg.accepted_at > now - ASK_UNTIL]
    claimed = _claim(session, [Due(leg.id, leg.version, KIND, leg.checkin_due_at)
                               for leg in asked if leg.checkin_due_at is not None], now)
    queued = 0
    for leg in asked:
        if (leg.id, KIND) not in claimed:
            continue  # asked already (another scheduler won)
        participant = leg.participant
        if not participant.email or not consents.covers(
                session, participant, leg.from_organization_id,
                consents.Purpose.FOLLOW_UP_CONTACT, now):
            continue  # recorded as fired: skipped for lack of email or consent, once
        token = new_token()
        expires_at = now + TOKEN_LIFETIME
        assert leg.accepted_at is not None
        subject, text, mail_language, page_language = compose_mail(
            participant.preferred_language, sender=name_of(leg.from_organization_id),
            receiver=name_of(leg.to_organization_id), accepted_at=leg.accepted_at,
            expires_at=expires_at, link=link(public_url, token))
        try:
            mail = queue_mail(session, to=participant.email, subject=subject, text=text,
                              language=mail_language, dedupe_key=f"{KIND}:{leg.id}", now=now)
        except ValueError as error:  # an address no server would take: never retried
            log.warning("check-in of leg %s not mailed: %s", leg.id, error)
            continue
        if mail is None:
            continue  # queued already (by an earlier claim): that mail's token stands
        session.add(ParticipantCheckin(
            id=uuid.uuid4(), referral_id=leg.id, token_hash=hash_token(token),
            created_at=now, expires_at=expires_at, language=page_language))
        queued += 1
    if legs:  # asking (or not) does not change the leg: its version stays
        session.execute(update(LEGS).where(LEGS.c.id.in_([leg.id for leg in legs]))
                        .values(checkin_due_at=None))
    return queued


# -- the participant's answer --------------------------------------------------------------------


class State(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # the participant no longer consents to follow-up contact


def state_of(session: Session, checkin: ParticipantCheckin, now: datetime) -> State:
    if checkin.answered_at is not None:
        return State.ANSWERED
    if checkin.expires_at <= now:
        return State.EXPIRED
    leg = session.get(Referral, checkin.referral_id)
    if leg is None or not consents.covers(session, leg.participant, leg.from_organization_id,
                                         consents.Purpose.FOLLOW_UP_CONTACT, now):
        return State.WITHDRAWN
    return State.OPEN


def receiver_name(session: Session, checkin: ParticipantCheckin) -> str:
    leg = session.get(Referral, checkin.referral_id)
    organization = session.get(Organization, leg.to_organization_id) if leg else None
    return organization.name if organization else ""


@dataclass(frozen=True)
class Recorded:
    state: State  # OPEN: this answer was recorded now; else why it was not
    signalled: bool = False  # a `referral.deadline_missed` went to both organizations


def record_answer(session: Session, checkin: ParticipantCheckin, answer: Answer,
                  now: datetime) -> Recorded:
    """Record the participant's answer, once; "No" on an open leg signals a missed first
    contact to both organizations.  In the caller's transaction (flushed, not committed).

    The answer is claimed by a conditional UPDATE: of two submissions at once (a double
    click), the second waits for the first and then finds the question answered."""
    state = state_of(session, checkin, now)
    if state is not State.OPEN:
        return Recorded(state)
    claimed = cast(CursorResult[Any], session.execute(  # an UPDATE's result has a rowcount
        update(ParticipantCheckin)
        .where(ParticipantCheckin.id == checkin.id, ParticipantCheckin.answered_at.is_(None),
               ParticipantCheckin.expires_at > now)
        .values(answered_at=now, answer=answer.value)
        .execution_options(synchronize_session=False)
    )).rowcount
    if not claimed:
        session.refresh(checkin)
        return Recorded(State.ANSWERED if checkin.answered_at else State.EXPIRED)
    session.refresh(checkin)
    if answer is not Answer.NOT_CONTACTED:
        return Recorded(State.OPEN)
    return Recorded(State.OPEN, _signal_not_contacted(session, checkin.referral_id, now))


def _signal_not_contacted(session: Session, referral_id: uuid.UUID, now: datetime,
                          attempts: int = 3) -> bool:
    """`referral.deadline_missed` (check `first_contact`, source `participant`) to both
    organizations, if the leg is still open; its version moves on like for any event.  A
    receiver changing the leg at the same moment makes us read it again and retry."""
    for _ in range(attempts):
        try:
            with session.begin_nested():
                leg = session.get(Referral, referral_id, populate_existing=True)
                if leg is None or lifecycle.is_terminal(Status(leg.status)):
                    return False
                leg.updated_at = now
                session.flush()
                # Not referrals._record: that one names the scheduler as the actor.
                position = record(
                    session, EventType.REFERRAL_DEADLINE_MISSED, subject=leg.subject,
                    sequence=leg.version, source_organization_id=None,
                    actor="participant:checkin",
                    data={"referral": snapshot(leg), "check": "first_contact",
                          "source": "participant"},
                    audience={leg.from_organization_id, leg.to_organization_id})
                # The receiving organization's contacts read it in the next digest.
                digests.queue_misses(session, [{
                    "event_position": position, "referral_id": leg.id,
                    "from_organization_id": leg.from_organization_id,
                    "to_organization_id": leg.to_organization_id, "check": "first_contact",
                    "due_at": now, "from_participant": True}])
            return True
        except StaleDataError:
            continue
    raise ConcurrentChange()
