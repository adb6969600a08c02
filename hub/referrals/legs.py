"""Referral legs: the table, the snapshot every event carries, and the reads that find a leg
for a caller.

The use cases that send a leg and move it through the lifecycle are in
`hub.referrals.handoffs`; the rules themselves in `hub.referrals.lifecycle`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    bindparam,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.exc import StaleDataError

from hub import crypto
from hub.accounts.callers import Caller
from hub.crypto import EncryptedJSON, EncryptedText
from hub.db import Base, forget_with_the_transaction, iso_utc, table_of, utcnow
from hub.errors import ConcurrentChange, NotFound
from hub.events.store import record
from hub.events.types import EventType
from hub.followups import deadlines
from hub.referrals import lifecycle
from hub.referrals.lifecycle import Action, Party, Status
from hub.referrals.participants import Participant

CALLER_CANCEL_REASONS = tuple(
    c.value for c in lifecycle.CancelReason if c is not lifecycle.CancelReason.CONSENT_WITHDRAWN
)

EVENT_OF_ACTION: dict[Action, EventType] = {
    Action.ACKNOWLEDGE: EventType.REFERRAL_ACKNOWLEDGED,
    Action.ACCEPT: EventType.REFERRAL_ACCEPTED,
    Action.DECLINE: EventType.REFERRAL_DECLINED,
    Action.START: EventType.REFERRAL_STARTED,
    Action.COMPLETE: EventType.REFERRAL_COMPLETED,
    Action.FORWARD: EventType.REFERRAL_FORWARDED,
    Action.CANCEL: EventType.REFERRAL_CANCELLED,
    Action.EXPIRE: EventType.REFERRAL_EXPIRED,
}


class Referral(Base):
    """One leg of a handoff, from one organization to another, for one participant."""

    __tablename__ = "referrals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The first leg of the participant's path; every forwarded leg shares it.
    chain_id: Mapped[uuid.UUID] = mapped_column(index=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"), index=True)
    from_organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    to_organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    pathway: Mapped[str] = mapped_column(String(40))
    # The day the participant is needed there (first day of the job, departure): bounds an
    # urgent leg's deadlines (`deadlines.bounded`).
    needed_by: Mapped[date | None]
    # The opportunity the participant is a candidate for (§12); the receiver published it.
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("opportunities.id"),
                                                             index=True)
    stage: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(10))
    # Free text about the person: encrypted at rest, shown only to those entitled.
    reason_for_referral: Mapped[str | None] = mapped_column(EncryptedText)
    needs: Mapped[list[str]] = mapped_column(EncryptedJSON, default=list)
    status: Mapped[str] = mapped_column(String(20))
    # Increases by one with every event of the leg: the ETag, and the events' `sequence`.
    version: Mapped[int] = mapped_column(Integer)
    forwarded_from: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"))
    forwarded_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"))
    decline_reason: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str | None] = mapped_column(String(40))
    cancel_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Due-at columns for the scheduled checks (to be indexed, partially, when they land).
    acknowledge_by: Mapped[datetime | None]
    decide_by: Mapped[datetime | None]
    start_by: Mapped[datetime | None]
    # Twice the acknowledgement allowance: a leg still unacknowledged then expires.
    expire_by: Mapped[datetime | None]
    # When the leg's next scheduled check is due (`deadlines.arm_checks`; indexed in followups).
    deadline_due_at: Mapped[datetime | None]
    followup_due_at: Mapped[datetime | None]
    checkin_due_at: Mapped[datetime | None]

    # Loaded with the leg (one query): every representation of a leg needs the participant.
    participant: Mapped[Participant] = relationship(lazy="joined", innerjoin=True)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_referrals_from_updated", "from_organization_id", "updated_at", "id"),
        Index("ix_referrals_to_updated", "to_organization_id", "updated_at", "id"),
        Index("ix_referrals_updated", "updated_at", "id"),
        # The portal's lists of open legs (inbox: urgent first, then newest; outbound: newest),
        # read in index order however long the organization's history.
        Index("ix_referrals_open_inbox", "to_organization_id", "priority", "created_at",
              postgresql_where=text("closed_at IS NULL"), sqlite_where=text("closed_at IS NULL")),
        Index("ix_referrals_open_outbound", "from_organization_id", "created_at",
              postgresql_where=text("closed_at IS NULL"), sqlite_where=text("closed_at IS NULL")),
        # Receivers' on-time record (coordinators' dashboard): covers the query.
        Index("ix_referrals_to_created", "to_organization_id", "created_at", "acknowledged_at",
              "acknowledge_by"),
        # The scheduled checks read only legs in the status a deadline applies to: partial
        # indexes, so a check's cost follows what is due, not the size of the history.
        *(Index(f"ix_referrals_due_{column}", column,
                postgresql_where=text(f"status = '{status}'"),
                sqlite_where=text(f"status = '{status}'"))
          for column, status in (("acknowledge_by", "sent"), ("expire_by", "sent"),
                                 ("decide_by", "acknowledged"), ("start_by", "accepted"))),
        # The partial indexes the scheduled checks read (`hub.followups`): only legs whose
        # check is still to come.
        *(Index(f"ix_referrals_{column}", column,
                postgresql_where=text(f"{column} IS NOT NULL"),
                sqlite_where=text(f"{column} IS NOT NULL"))
          for column in ("deadline_due_at", "followup_due_at", "checkin_due_at")),
    )

    @property
    def subject(self) -> str:
        return f"referrals/{self.id}"

    def party_of(self, organization_id: uuid.UUID) -> Party | None:
        if organization_id == self.to_organization_id:
            return Party.RECEIVER
        if organization_id == self.from_organization_id:
            return Party.SENDER
        return None


# The legs' table, for the Core statements of the scheduled checks (`hub.followups`).
LEGS = table_of(Referral)


class ReferralNote(Base):
    """Free text attached to a transition, kept apart from the immutable event log.

    Notes may hold personal data ("Rendez-vous avec Mme X le 2 décembre"); events only refer to
    them, so they can be redacted or erased without touching history.
    """

    __tablename__ = "referral_notes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), index=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    body: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime]


def _note_owner(session: Session, note: ReferralNote) -> uuid.UUID | None:
    # The leg may be new in the same flush: not yet where `get` looks.
    referral = next((r for r in session.new if isinstance(r, Referral)
                     and r.id == note.referral_id), None) or session.get(Referral, note.referral_id)
    return _leg_owner(session, referral) if referral is not None else None


# A leg's free text and a note are the person's data, sealed under their key (§15).
def _leg_owner(_session: Session, referral: Referral) -> uuid.UUID | None:
    # A new leg may name its participant by the relationship only, until the flush.
    if referral.participant_id is not None:
        return referral.participant_id
    return referral.participant.id if referral.participant is not None else None


crypto.personal_data(Referral, ("reason_for_referral", "needs"), _leg_owner)
crypto.personal_data(ReferralNote, ("body",), _note_owner)


def snapshot(referral: Referral) -> dict[str, Any]:
    """The leg's state as stored in its events: codes and references, no free text."""
    iso = iso_utc  # short, for the table below

    def ident(value: uuid.UUID | None) -> str | None:
        return str(value) if value else None

    return {
        "id": str(referral.id),
        "chain_id": str(referral.chain_id),
        "participant_id": str(referral.participant_id),
        "from_organization_id": str(referral.from_organization_id),
        "to_organization_id": str(referral.to_organization_id),
        "pathway": referral.pathway,
        "stage": referral.stage,
        "priority": referral.priority,
        "needed_by": referral.needed_by.isoformat() if referral.needed_by else None,
        "opportunity_id": ident(referral.opportunity_id),
        "status": referral.status,
        "version": referral.version,
        "forwarded_from": ident(referral.forwarded_from),
        "forwarded_to": ident(referral.forwarded_to),
        "decline_reason": referral.decline_reason,
        "outcome": referral.outcome,
        "cancel_reason": referral.cancel_reason,
        "created_at": iso(referral.created_at),
        "updated_at": iso(referral.updated_at),
        "deadlines": {
            "acknowledge_by": iso(referral.acknowledge_by),
            "decide_by": iso(referral.decide_by),
            "start_by": iso(referral.start_by),
        },
    }


def record_leg_event(
    session: Session,
    referral: Referral,
    event_type: EventType,
    caller: Caller | None,
    note: ReferralNote | None = None,
    *,
    extra: dict[str, Any] | None = None,
    audience: set[uuid.UUID] | None = None,
) -> None:
    """Append the leg's event; `extra` adds codes and references (never free text) beside
    the leg; the audience is both organizations unless named."""
    data: dict[str, Any] = {"referral": snapshot(referral), **(extra or {})}
    if note is not None:
        data["note_id"] = str(note.id)
    record(
        session,
        event_type,
        subject=referral.subject,
        sequence=referral.version,
        source_organization_id=caller.organization_id if caller else None,
        actor=caller.actor if caller else "scheduler",
        data=data,
        audience=audience or {referral.from_organization_id, referral.to_organization_id},
    )


def add_note(
    session: Session, referral: Referral, caller: Caller, body: str | None
) -> ReferralNote | None:
    if not body or not body.strip():
        return None
    note = ReferralNote(
        id=uuid.uuid4(),
        referral_id=referral.id,
        organization_id=caller.organization_id,
        body=body.strip(),
        created_at=utcnow(),
    )
    session.add(note)
    return note


# The statements of the lifecycle's hot path, built once with bound values: building a
# statement costs about as much Python as running it (bench/README.md).
_LEG = select(Referral).where(Referral.id == bindparam("referral_id", type_=Uuid()))
_CHAIN = (select(Referral).where(Referral.chain_id == bindparam("chain_id", type_=Uuid()))
          .order_by(Referral.created_at, Referral.id))
OPEN_STATUSES = [s.value for s in lifecycle.OPEN]


def visible_referral(session: Session, caller: Caller, referral_id: uuid.UUID) -> Referral:
    """The leg, if the caller sent or received it (coordinators see every leg); else NotFound."""
    referral = session.scalar(_LEG, {"referral_id": referral_id})
    if referral is None or not (
        caller.is_coordinator or referral.party_of(caller.organization_id)
    ):
        raise NotFound("referral", referral_id)
    return referral


# Per transaction, in `session.info`: what `handoffs.leg_to_change` read about the open legs an
# organization receives, and the chains of legs started in the transaction.
OPEN_LEGS_KNOWN = "open_legs_received"
STARTED_CHAINS = "chains_started"


def receives_open_leg(session: Session, organization_id: uuid.UUID,
                      participant_id: uuid.UUID) -> bool | None:
    """Whether the organization receives an open leg of the participant, as known from the leg
    it changes in this transaction (`handoffs.leg_to_change`: that leg's status now, and whether
    another open leg was there when it was read); None when not known.

    Forgotten when this transaction makes or cancels a leg, and at its end.  Another
    transaction closing that other leg meanwhile is not seen: the organization did receive it
    when its request began.  (A withdrawal of consent is: it cancels the changed leg too, whose
    version check then fails, and the step is retried.)
    """
    known = session.info.get(OPEN_LEGS_KNOWN, {}).get((participant_id, organization_id))
    if known is None:
        return None
    leg, another_open_leg = known
    return bool(another_open_leg) or (leg.to_organization_id == organization_id
                                      and leg.status in OPEN_STATUSES)


def forget_leg_counts(session: Session) -> None:
    """A leg was made or cancelled: what was read about open legs no longer holds."""
    session.info.pop(OPEN_LEGS_KNOWN, None)


forget_with_the_transaction(OPEN_LEGS_KNOWN, STARTED_CHAINS)


def chain_of(session: Session, referral: Referral) -> list[Referral]:
    """Every leg of the participant's path this leg belongs to, oldest first.

    A chain this transaction started holds that one leg until the transaction adds another
    (no other transaction sees it before the commit): no query then.
    """
    if session.info.get(STARTED_CHAINS, {}).get(referral.chain_id) is referral:
        return [referral]
    return list(session.scalars(_CHAIN, {"chain_id": referral.chain_id}))


def flush_checking_version(session: Session) -> None:
    try:
        session.flush()  # the UPDATE checks the version: a concurrent change fails here
    except StaleDataError as error:
        raise ConcurrentChange() from error


def receiving_organizations(session: Session, participant_id: uuid.UUID) -> set[uuid.UUID]:
    """Every organization a leg for the participant was ever sent to: they got their data."""
    return set(session.scalars(
        select(Referral.to_organization_id).where(Referral.participant_id == participant_id)
    ))


def open_legs_of(session: Session, participant_id: uuid.UUID) -> list[Referral]:
    return list(session.scalars(
        select(Referral).where(Referral.participant_id == participant_id,
                               Referral.status.in_(OPEN_STATUSES))
        .order_by(Referral.created_at, Referral.id)
    ))


def cancel_for_lack_of_consent(session: Session, referral: Referral, now: datetime) -> None:
    """Cancel an open leg whose receiver the participant's consent no longer covers.

    Done by the hub itself (source `/hub`), on the sender's behalf, whoever withdrew (the
    participant's organization, which may not be this leg's sender) or the scheduler.
    """
    lifecycle.next_status(Status(referral.status), Action.CANCEL, Party.SENDER)
    referral.status = Status.CANCELLED.value
    referral.cancel_reason = lifecycle.CancelReason.CONSENT_WITHDRAWN.value
    referral.updated_at = referral.closed_at = now
    deadlines.arm_checks(referral)
    flush_checking_version(session)
    forget_leg_counts(session)
    record(session, EventType.REFERRAL_CANCELLED, subject=referral.subject,
           sequence=referral.version, source_organization_id=None, actor="hub:consent",
           data={"referral": snapshot(referral)},
           audience={referral.from_organization_id, referral.to_organization_id})


def list_referrals(
    session: Session,
    caller: Caller,
    *,
    direction: str | None = None,
    status: list[str] | None = None,
    pathway: str | None = None,
    priority: str | None = None,
    updated_since: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> list[Referral]:
    """The caller's legs, oldest change first (keyset on updated_at, id).

    A snapshot of current state: a change committed while a client pages may land behind its
    cursor.  To follow every change, systems read the event feed, which never skips.
    """
    query = select(Referral)
    org = caller.organization_id
    if direction == "inbound":
        query = query.where(Referral.to_organization_id == org)
    elif direction == "outbound":
        query = query.where(Referral.from_organization_id == org)
    elif not caller.is_coordinator:
        query = query.where(
            (Referral.to_organization_id == org) | (Referral.from_organization_id == org)
        )
    if status:
        query = query.where(Referral.status.in_(status))
    if pathway:
        query = query.where(Referral.pathway == pathway)
    if priority:
        query = query.where(Referral.priority == priority)
    if updated_since:
        query = query.where(Referral.updated_at >= updated_since)
    if after:
        updated_at, last_id = after
        query = query.where(
            (Referral.updated_at > updated_at)
            | ((Referral.updated_at == updated_at) & (Referral.id > last_id))
        )
    query = query.order_by(Referral.updated_at, Referral.id).limit(limit)
    return list(session.scalars(query))
