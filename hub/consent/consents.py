"""Consent: the participant's permission, checked before personal data moves (docs/design.md §5).

A consent is an append-only record: the grant (`consents` and `consent_organizations`) is never
changed, and its end — a withdrawal or an expiry — is one more row (`consent_endings`, at most
one per consent).  The current status is derived from those rows and the clock, so a consent
past its `expires_at` stops covering anyone at once, before the scheduled check records the
expiry.  Every grant and ending is also an event (`consent.*`).

`covered_among()` is the one question every flow asks (sending, forwarding, rendering a
payload), for a page of participants or, as `covers()`, for one; `require_referral_sharing()`
is the seam the referral use cases call before a leg is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    String,
    Uuid,
    and_,
    bindparam,
    exists,
    false,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from hub import crypto
from hub.accounts.callers import Caller
from hub.crypto import EncryptedText
from hub.db import Base, UTCDateTime, forget_with_the_transaction, iso_utc, utcnow
from hub.directory.organizations import Organization
from hub.errors import DomainError, Invalid, NotAllowed, NotFound
from hub.events.store import record
from hub.events.types import EventType
from hub.referrals.participants import Participant

DEFAULT_VALIDITY = timedelta(days=365)  # "12 months" (docs/design.md §5)


class Purpose(StrEnum):
    REFERRAL_SHARING = "referral_sharing"
    FOLLOW_UP_CONTACT = "follow_up_contact"
    PEER_MATCHING = "peer_matching"
    OUTCOME_REPORTING = "outcome_reporting"


class Evidence(StrEnum):
    WRITTEN = "written"
    VERBAL = "verbal"
    ELECTRONIC = "electronic"


class ConsentStatus(StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class Consent(Base):
    """A grant, as recorded: never updated (its end is a `ConsentEnding`)."""

    __tablename__ = "consents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"))
    purpose: Mapped[str] = mapped_column(String(40))
    network_wide: Mapped[bool] = mapped_column(Boolean)
    # referral_sharing only: employers and insertion enterprises may read the reason, the needs
    # and the notes too, not only names and contact channels (docs/design.md §12).
    share_details: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    evidence: Mapped[str] = mapped_column(String(20))
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_by_organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id"))
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    organizations: Mapped[list[ConsentOrganization]] = relationship(
        lazy="selectin", order_by="ConsentOrganization.organization_id")
    ending: Mapped[ConsentEnding | None] = relationship(lazy="selectin")

    __table_args__ = (
        Index("ix_consents_participant_purpose", "participant_id", "purpose"),
        # The expiry check reads consents by expiry date.
        Index("ix_consents_expires_at", "expires_at"),
    )

    @property
    def subject(self) -> str:
        return f"consents/{self.id}"

    @property
    def organization_ids(self) -> list[uuid.UUID]:
        return [named.organization_id for named in self.organizations]

    def status(self, now: datetime | None = None) -> ConsentStatus:
        if self.ending is not None:
            return ConsentStatus(self.ending.kind)
        if self.expires_at <= (now or utcnow()):
            return ConsentStatus.EXPIRED
        return ConsentStatus.ACTIVE

    def names(self, organization_id: uuid.UUID) -> bool:
        return self.network_wide or organization_id in self.organization_ids


class ConsentOrganization(Base):
    """An organization a consent names (none when the consent is network-wide)."""

    __tablename__ = "consent_organizations"

    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consents.id"), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id"), primary_key=True, index=True)


class ConsentNote(Base):
    """The counsellor's free text about a consent, kept apart from the append-only record so
    that it can be re-encrypted (key rotation) or erased."""

    __tablename__ = "consent_notes"

    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consents.id"), primary_key=True)
    body: Mapped[str] = mapped_column(EncryptedText)


def _note_owner(session: Session, note: ConsentNote) -> uuid.UUID | None:
    # The consent may be new in the same flush: not yet where `get` looks.
    consent = next((c for c in session.new if isinstance(c, Consent) and c.id == note.consent_id),
                   None) or session.get(Consent, note.consent_id)
    return consent.participant_id if consent is not None else None


crypto.personal_data(ConsentNote, ("body",), _note_owner)  # sealed under the person's key


class ConsentEnding(Base):
    """How a consent ended: withdrawn or expired.  The primary key makes it happen once."""

    __tablename__ = "consent_endings"

    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consents.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(200))


@dataclass(eq=False)  # not frozen: raising sets __traceback__ on it
class ConsentRequired(DomainError):
    http_status = 409
    title = "Consent required"
    slug = "consent_required"

    participant_id: uuid.UUID
    organization_id: uuid.UUID
    purpose: str = Purpose.REFERRAL_SHARING.value

    def __str__(self) -> str:
        return (
            f"No active '{self.purpose}' consent of participant {self.participant_id} covers "
            f"organization {self.organization_id}. Record the participant's consent for this "
            f"organization (or the whole network) with POST /api/v1/participants/"
            f"{self.participant_id}/consents, then send again."
        )

    def members(self) -> dict[str, Any]:
        return {"participant_id": str(self.participant_id),
                "organization_id": str(self.organization_id), "purpose": self.purpose}


@dataclass(eq=False)
class ConsentNotActive(DomainError):
    http_status = 409
    title = "Consent not active"
    slug = "consent-not-active"

    consent_id: uuid.UUID
    status: ConsentStatus

    def __str__(self) -> str:
        return f"Consent {self.consent_id} is {self.status.value}: there is nothing to withdraw."

    def members(self) -> dict[str, Any]:
        return {"consent_status": self.status.value}


# --- the questions every flow asks ------------------------------------------------------------

def _active(now: Any) -> Any:
    """SQL condition: a consent neither ended nor past its expiry."""
    return (~exists().where(ConsentEnding.consent_id == Consent.id)) & (Consent.expires_at > now)


def covering(participant_id: Any, organization_id: Any, purpose: Any, now: Any
             ) -> ColumnElement[bool]:
    """SQL: whether an active consent of the participant for `purpose` covers the organization.

    An EXISTS, so that the question can be asked inside the query that loads a leg or a
    participant (one round trip instead of two); the arguments are columns or bound values.
    """
    return exists().where(Consent.participant_id == participant_id,
                          _grants(organization_id, purpose, now))


def _grants(organization_id: Any, purpose: Any, now: Any) -> ColumnElement[bool]:
    """SQL condition on a `consents` row: an active consent for `purpose` that covers the
    organization (names it, or the whole network)."""
    named = exists().where(ConsentOrganization.consent_id == Consent.id,
                           ConsentOrganization.organization_id == organization_id)
    return and_(Consent.purpose == purpose, _active(now), Consent.network_wide | named)


# Built once: building a statement costs more Python than running it (see bench/README.md).
_COVERED_AMONG = select(Consent.participant_id).where(
    Consent.participant_id.in_(bindparam("participant_ids", expanding=True)),
    _grants(bindparam("organization_id", type_=Uuid()), bindparam("purpose", type_=String()),
            bindparam("now", type_=UTCDateTime())),
).distinct()

# Per transaction, in `session.info`: answers already read, and participants already locked.
KNOWN = "consent_coverage"
LOCKED = "locked_participants"


def remember(session: Session, participant_id: uuid.UUID, organization_id: uuid.UUID,
             purpose: str, covered: bool) -> None:
    """Keep an answer to `covers()` read by another query of this transaction (see `covering`),
    so that rendering asks no second time.  Forgotten at the end of the transaction and
    whenever a consent is granted or ended in it."""
    session.info.setdefault(KNOWN, {})[(participant_id, organization_id, purpose)] = covered


forget_with_the_transaction(KNOWN, LOCKED)


def covers(session: Session, participant: Participant, organization_id: uuid.UUID,
           purpose: str, now: datetime | None = None) -> bool:
    """Whether an active consent of `participant` for `purpose` covers `organization_id`:
    `covered_among` for one person."""
    return participant.id in covered_among(session, (participant,), organization_id, purpose,
                                           now)


def covered_among(session: Session, participants: Iterable[Participant],
                  organization_id: uuid.UUID, purpose: str,
                  now: datetime | None = None) -> set[uuid.UUID]:
    """The ids of `participants` whose active consent for `purpose` covers `organization_id`:
    the rule, for one person or a whole page of legs (one query, none for answers known).

    Without `now`, an answer already read in this transaction by another query (`remember`)
    is taken as it is; with `now`, the database is always asked.
    """
    chosen = {participant.id: participant for participant in participants}
    covered: set[uuid.UUID] = set()
    if purpose == Purpose.REFERRAL_SHARING:
        # Their own organization holds their data already; other purposes (being contacted for
        # follow-up, counted in reports...) need the person's consent.
        covered = {pid for pid, p in chosen.items() if p.organization_id == organization_id}
    others = [pid for pid in chosen if pid not in covered]
    if now is None and others:
        known = session.info.get(KNOWN, {})
        unknown = []
        for pid in others:
            answer = known.get((pid, organization_id, purpose))
            if answer is None:
                unknown.append(pid)
            elif answer:
                covered.add(pid)
        others = unknown
    if others:
        covered.update(session.scalars(_COVERED_AMONG, {
            "participant_ids": others, "organization_id": organization_id,
            "purpose": purpose, "now": now or utcnow()}))
    return covered


_SHARES_DETAILS = select(Consent.id).where(
    Consent.participant_id == bindparam("participant_id", type_=Uuid()),
    Consent.share_details.is_(True),
    _grants(bindparam("organization_id", type_=Uuid()), Purpose.REFERRAL_SHARING.value,
            bindparam("now", type_=UTCDateTime())),
).limit(1)


def shares_details(session: Session, participant: Participant,
                   organization_id: uuid.UUID) -> bool:
    """Whether an active referral_sharing consent that covers the organization also shares
    the referral's details with it (`share_details`, docs/design.md §12)."""
    return session.scalar(_SHARES_DETAILS, {
        "participant_id": participant.id, "organization_id": organization_id,
        "now": utcnow()}) is not None


def lock_participant(session: Session, participant_id: uuid.UUID) -> None:
    """Take the participant's row lock until the end of the transaction.

    A referral sent while the consent covering it is withdrawn must not slip through: both
    take this lock before reading consent, so one waits for the other and sees its result.
    (SQLite has no row locks; a write takes its one-writer turn instead.)
    """
    if participant_id in session.info.get(LOCKED, ()):
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Participant.id).where(Participant.id == participant_id)
                        .with_for_update())
    else:
        session.execute(update(Participant).where(Participant.id == participant_id)
                        .values(organization_id=Participant.organization_id))
    session.info.setdefault(LOCKED, set()).add(participant_id)


# By "on PostgreSQL?": built once (each send runs one).
_PARTICIPANT_ID = bindparam("participant_id", type_=Uuid())
_LOCKED_PARTICIPANT = {
    True: select(Participant).where(Participant.id == _PARTICIPANT_ID).with_for_update(),
    False: update(Participant).where(Participant.id == _PARTICIPANT_ID)
    .values(organization_id=Participant.organization_id).returning(Participant),
}


def locked_participant(session: Session, participant_id: uuid.UUID) -> Participant | None:
    """Load the participant and take their lock (see `lock_participant`) in one statement:
    SELECT ... FOR UPDATE on PostgreSQL, the same no-op UPDATE with RETURNING on SQLite."""
    statement = _LOCKED_PARTICIPANT[session.get_bind().dialect.name == "postgresql"]
    participant = session.scalars(statement, {"participant_id": participant_id}, execution_options={
        "synchronize_session": False, "populate_existing": True}).one_or_none()
    if participant is not None:
        session.info.setdefault(LOCKED, set()).add(participant_id)
    return participant


def require_referral_sharing(
    session: Session, participant: Participant, organization_id: uuid.UUID
) -> None:
    """Refuse (ConsentRequired) to send `participant`'s referral to an organization not covered.

    Asked after the participant's lock, in a statement of its own: on PostgreSQL each statement
    reads what was committed when it began, so a withdrawal that held the lock is seen.
    """
    lock_participant(session, participant.id)
    if not covers(session, participant, organization_id, Purpose.REFERRAL_SHARING,
                  utcnow()):  # a time given: never an answer remembered from before the lock
        raise ConsentRequired(participant.id, organization_id)


# --- what a consent looks like from outside ---------------------------------------------------

def snapshot(consent: Consent, now: datetime | None = None) -> dict[str, Any]:
    """The consent as stored in its events and returned by the API: codes and references."""
    ending = consent.ending
    return {
        "id": str(consent.id),
        "participant_id": str(consent.participant_id),
        "purpose": consent.purpose,
        "organization_ids": [str(o) for o in consent.organization_ids],
        "network_wide": consent.network_wide,
        "share_details": consent.share_details,
        "evidence": consent.evidence,
        "status": consent.status(now).value,
        "recorded_by": consent.recorded_by,
        "granted_at": iso_utc(consent.granted_at),
        "expires_at": iso_utc(consent.expires_at),
        "withdrawn_at": iso_utc(ending.at) if ending and ending.kind == "withdrawn" else None,
        "expired_at": iso_utc(ending.at) if ending and ending.kind == "expired" else None,
    }


def record_consent_event(session: Session, consent: Consent, event_type: EventType, sequence: int,
            actor: str, source_organization_id: uuid.UUID | None,
            audience: Iterable[uuid.UUID]) -> None:
    data: dict[str, Any] = {"consent": snapshot(consent)}
    if event_type is not EventType.CONSENT_GRANTED:
        data["erase_personal_data"] = True
    record(session, event_type, subject=consent.subject, sequence=sequence,
           source_organization_id=source_organization_id, actor=actor, data=data,
           audience=audience)


# --- use cases --------------------------------------------------------------------------------

def own_participant(session: Session, caller: Caller, participant_id: uuid.UUID) -> Participant:
    """Consents are recorded and read by the participant's own organization only."""
    participant = session.get(Participant, participant_id)
    if participant is None or participant.organization_id != caller.organization_id:
        raise NotFound("participant", participant_id)
    return participant


def grant(session: Session, caller: Caller, participant_id: uuid.UUID, *, purpose: str,
          evidence: str, organization_ids: list[uuid.UUID] | None = None,
          network_wide: bool = False, expires_at: datetime | None = None,
          note: str | None = None, now: datetime | None = None,
          share_details: bool = False) -> Consent:
    """Record the participant's consent; the `consent.granted` event goes to their
    organization."""
    if caller.is_coordinator:
        raise NotAllowed("Coordination bodies watch the network; they record no consents.")
    participant = own_participant(session, caller, participant_id)
    session.info.pop(KNOWN, None)  # answers read before no longer hold
    now = now or utcnow()
    named = list(dict.fromkeys(organization_ids or []))
    if network_wide and named:
        raise Invalid({"organization_ids": [
            "Give either organization_ids or network_wide: true, not both."]})
    if not network_wide and not named:
        raise Invalid({"organization_ids": [
            "Name the organizations the participant agrees to, or set network_wide: true."]})
    if named:
        known = set(session.scalars(select(Organization.id).where(Organization.id.in_(named))))
        unknown = [str(o) for o in named if o not in known]
        if unknown:
            raise Invalid({"organization_ids": [
                f"Not in the directory: {', '.join(unknown)}."]})
    if share_details and purpose != Purpose.REFERRAL_SHARING:
        raise Invalid({"share_details": [
            "Only a referral_sharing consent shares the referral's details; leave "
            "share_details out for this purpose."]})
    expires_at = expires_at or now + DEFAULT_VALIDITY
    if expires_at <= now:
        raise Invalid({"expires_at": ["Must be in the future."]})
    consent = Consent(
        id=uuid.uuid4(), participant_id=participant.id, purpose=Purpose(purpose).value,
        network_wide=network_wide, share_details=share_details,
        evidence=Evidence(evidence).value, recorded_by=caller.actor,
        recorded_by_organization_id=caller.organization_id, granted_at=now,
        expires_at=expires_at,
        organizations=[ConsentOrganization(organization_id=o) for o in named],
    )
    consent.ending = None  # known to be none: no query to find out
    session.add(consent)
    if note and note.strip():
        session.add(ConsentNote(consent_id=consent.id, body=note.strip()))
    session.flush()
    record_consent_event(session, consent, EventType.CONSENT_GRANTED, 1, caller.actor,
            caller.organization_id, {participant.organization_id})
    return consent


def visible_consent(session: Session, caller: Caller, consent_id: uuid.UUID) -> Consent:
    consent = session.get(Consent, consent_id)
    if consent is None:
        raise NotFound("consent", consent_id)
    owner = session.get(Participant, consent.participant_id)
    if owner is None or owner.organization_id != caller.organization_id:
        raise NotFound("consent", consent_id)
    return consent


def history(session: Session, participant_id: uuid.UUID,
            after: tuple[datetime, uuid.UUID] | None = None,
            limit: int | None = None) -> list[Consent]:
    """Every consent of the participant, oldest grant first."""
    query = select(Consent).where(Consent.participant_id == participant_id)
    if after:
        granted_at, last_id = after
        query = query.where((Consent.granted_at > granted_at)
                            | ((Consent.granted_at == granted_at) & (Consent.id > last_id)))
    query = query.order_by(Consent.granted_at, Consent.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


