"""Referral legs and the use cases that send them and move them through the lifecycle.

The rules themselves are in `hub.referrals.lifecycle`; this module loads the leg, asks the rules, applies
the change and records the event, all in the caller's transaction (flushed, never committed).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    bindparam,
    exists,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, relationship
from sqlalchemy.orm.exc import StaleDataError

from hub.accounts.callers import Caller
from hub.consent import consents
from hub.crypto import EncryptedJSON, EncryptedText
from hub.db import Base, UTCDateTime, forget_with_the_transaction, iso_utc, utcnow
from hub.directory.organizations import Organization
from hub.errors import ConcurrentChange, Invalid, NotAllowed, NotFound, VersionMismatch
from hub.events.store import record
from hub.events.types import EventType
from hub.followups import deadlines, policies
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


def _record(
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


def _add_note(
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


# The leg a party changes, with the answers to the two questions that showing it to that
# party will ask: does the caller's organization receive another open leg of the participant,
# and does an active referral_sharing consent cover it?  One round trip instead of three.
_CALLER = bindparam("organization_id", type_=Uuid())
_OTHER = aliased(Referral)
_LEG_TO_CHANGE = select(
    Referral,
    exists().where(_OTHER.participant_id == Referral.participant_id,
                   _OTHER.to_organization_id == _CALLER,
                   _OTHER.status.in_(OPEN_STATUSES),
                   _OTHER.id != Referral.id),
    consents.covering(Referral.participant_id, _CALLER, consents.Purpose.REFERRAL_SHARING.value,
                     bindparam("now", type_=UTCDateTime())),
).where(Referral.id == bindparam("referral_id", type_=Uuid()))

# Per transaction, in `session.info`: what `leg_to_change` read about the open legs an
# organization receives, and the chains of legs started in the transaction.
OPEN_LEGS_KNOWN = "open_legs_received"
STARTED_CHAINS = "chains_started"


def leg_to_change(session: Session, caller: Caller, referral_id: uuid.UUID) -> Referral:
    """`visible_referral`, with the answers for the caller kept for this transaction: the
    consent's (`consent.remember`) and whether it receives another open leg of the participant
    (`receives_open_leg`, which a step that closes this leg needs to show it).

    Read before the change, the consent answer still holds when the changed leg is shown: a
    withdrawal that would uncover the caller cancels the caller's open legs, and so changes this
    leg's version (the change then fails and is retried on the new state) or waits for this
    transaction.
    """
    row = session.execute(_LEG_TO_CHANGE, {
        "referral_id": referral_id, "organization_id": caller.organization_id,
        "now": utcnow()}).one_or_none()
    if row is None or not (caller.is_coordinator or row[0].party_of(caller.organization_id)):
        raise NotFound("referral", referral_id)
    referral, another_open_leg, covered = row
    session.info.setdefault(OPEN_LEGS_KNOWN, {})[
        (referral.participant_id, caller.organization_id)] = (referral, another_open_leg)
    consents.remember(session, referral.participant_id, caller.organization_id,
                     consents.Purpose.REFERRAL_SHARING.value, covered)
    return referral


def receives_open_leg(session: Session, organization_id: uuid.UUID,
                      participant_id: uuid.UUID) -> bool | None:
    """Whether the organization receives an open leg of the participant, as known from the leg
    it changes in this transaction (`leg_to_change`: that leg's status now, and whether another
    open leg was there when it was read); None when not known.

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


def _legs_changed(session: Session) -> None:
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


def _receiving_organization(session: Session, caller: Caller, organization_id: uuid.UUID,
                            field: str = "to_organization_id") -> Organization:
    organization = session.get(Organization, organization_id)
    if organization is None:
        raise Invalid({field: [f"No organization with id {organization_id} in the directory."]})
    if organization.id == caller.organization_id:
        raise Invalid({field: ["A referral goes to another organization than your own."]})
    if organization.is_coordinator:
        raise Invalid({field: [
            "Coordination bodies watch the network; they receive no referrals."]})
    return organization


def _check_stage(pathway: str, stage: str | None) -> None:
    if pathway in lifecycle.ENTREPRENEURSHIP_PATHWAYS and stage is None:
        raise Invalid({"stage": ["Entrepreneurship referrals need a stage: exploration or "
                                 "prevalidation."]})
    if pathway not in lifecycle.ENTREPRENEURSHIP_PATHWAYS and stage is not None:
        raise Invalid({"stage": ["Only entrepreneurship pathways carry a stage."]})


def _new_leg(
    session: Session,
    caller: Caller,
    *,
    participant: Participant,
    to_organization: Organization,
    pathway: str,
    stage: str | None,
    priority: str,
    reason_for_referral: str | None,
    needs: list[str],
    previous: Referral | None,
) -> Referral:
    consents.require_referral_sharing(session, participant, to_organization.id)
    now = utcnow()
    leg_id = uuid.uuid4()
    # The policy in force for this receiver, pathway and priority (DESIGN §6).
    acknowledge_days = policies.business_days(
        session, organization_id=to_organization.id, pathway=pathway, check="acknowledge",
        priority=priority)
    time_zone = policies.time_zone_of(session, to_organization.id)
    referral = Referral(
        id=leg_id,
        participant=participant,
        chain_id=previous.chain_id if previous else leg_id,
        from_organization_id=caller.organization_id,
        to_organization_id=to_organization.id,
        pathway=pathway,
        stage=stage,
        priority=priority,
        reason_for_referral=reason_for_referral,
        needs=list(needs),
        status=Status.SENT.value,
        forwarded_from=previous.id if previous else None,
        created_at=now,
        updated_at=now,
        acknowledge_by=deadlines.deadline("acknowledge", priority, now,
                                          business_days=acknowledge_days, time_zone=time_zone),
        expire_by=deadlines.deadline("acknowledge", priority, now, times=2,
                                     business_days=acknowledge_days, time_zone=time_zone),
    )
    deadlines.arm_checks(referral)
    session.add(referral)
    session.flush()
    _legs_changed(session)
    started = session.info.setdefault(STARTED_CHAINS, {})
    if previous is None:
        started[leg_id] = referral
    else:
        started.pop(referral.chain_id, None)
    return referral


def send_referral(
    session: Session,
    caller: Caller,
    *,
    participant_id: uuid.UUID,
    to_organization_id: uuid.UUID,
    pathway: str,
    priority: str = "routine",
    stage: str | None = None,
    reason_for_referral: str | None = None,
    needs: list[str] | None = None,
    forwarded_from: uuid.UUID | None = None,
) -> Referral:
    """Create a leg and send it: the `referral.sent` event goes to both organizations."""
    from hub.consent import visibility  # visibility reads referrals: imported late to avoid a cycle

    if caller.is_coordinator:
        raise NotAllowed("Coordination bodies watch the network; they send no referrals.")
    participant = visibility.referable_participant(session, caller, participant_id)
    if participant is None:
        raise Invalid({"participant_id": [
            f"No participant with id {participant_id} that your organization may refer."]})
    previous = None
    if forwarded_from is not None:
        not_a_previous_leg = Invalid({"forwarded_from": [
            "Must be a leg of your organization for the same participant."]})
        try:
            previous = visible_referral(session, caller, forwarded_from)
        except NotFound:
            raise not_a_previous_leg from None
        if previous.participant_id != participant.id:
            raise not_a_previous_leg
    _check_stage(pathway, stage)
    to_organization = _receiving_organization(session, caller, to_organization_id)
    referral = _new_leg(
        session, caller, participant=participant, to_organization=to_organization,
        pathway=pathway, stage=stage, priority=priority,
        reason_for_referral=reason_for_referral, needs=needs or [], previous=previous,
    )
    visibility.note_read_ahead(session, caller, referral)  # the answer shows the leg
    _record(session, referral, EventType.REFERRAL_SENT, caller)
    return referral


def send_onward(
    session: Session,
    caller: Caller,
    previous: Referral,
    *,
    to_organization_id: uuid.UUID,
    pathway: str,
    priority: str = "routine",
    stage: str | None = None,
) -> Referral:
    """A new leg after `previous`, a leg `caller` sent of a participant another organization
    registered (`hub.referrals.redirection`: the sender redirects a leg it forwarded).

    Like a forward, the reason for the referral and the needs go with the new leg as they
    are, from leg to leg: never through the caller, who may not read them.  Raises what
    `send_referral` raises (ConsentRequired for a receiver no consent covers)."""
    from hub.consent import visibility  # visibility reads referrals: imported late to avoid a cycle

    participant = consents.locked_participant(session, previous.participant_id)
    if participant is None:
        raise NotFound("participant", previous.participant_id)
    _check_stage(pathway, stage)
    to_organization = _receiving_organization(session, caller, to_organization_id)
    referral = _new_leg(
        session, caller, participant=participant, to_organization=to_organization,
        pathway=pathway, stage=stage, priority=priority,
        reason_for_referral=previous.reason_for_referral, needs=list(previous.needs or []),
        previous=previous,
    )
    visibility.note_read_ahead(session, caller, referral)  # logs only a read it will make
    _record(session, referral, EventType.REFERRAL_SENT, caller)
    return referral


def transition(
    session: Session,
    caller: Caller,
    referral_id: uuid.UUID,
    action: Action,
    *,
    expected_version: int | None = None,
    note: str | None = None,
    reason: str | None = None,
    outcome: str | None = None,
    to_organization_id: uuid.UUID | None = None,
) -> Referral:
    """Apply `action` to a leg for `caller`; returns the leg (for `forward`, the new leg).

    Raises NotFound (not a party), VersionMismatch (stale If-Match), lifecycle.NotYourTurn
    (the other party's action), lifecycle.TransitionRefused (not from this status),
    Invalid (missing code, bad target) or consent.ConsentRequired (forward not covered).
    The caller is shown the leg returned (API, inbound answers): see
    `visibility.note_read_ahead`.
    """
    from hub.consent import visibility  # visibility reads referrals: imported late to avoid a cycle

    # No row lock: the UPDATE checks the version read here, so of two concurrent answers one
    # fails at flush and is retried on the new state (see ConcurrentChange), on every backend.
    referral = leg_to_change(session, caller, referral_id)
    party = referral.party_of(caller.organization_id)
    if party is None:  # a coordinator: may watch, never act
        raise lifecycle.NotYourTurn(action, lifecycle.ACTOR[action])
    if expected_version is not None and expected_version != referral.version:
        raise VersionMismatch(expected_version, referral.version)
    target = lifecycle.next_status(Status(referral.status), action, party)

    if action is Action.DECLINE and reason not in set(lifecycle.DeclineReason):
        raise Invalid({"reason": [
            f"A reason code is needed: {', '.join(lifecycle.DeclineReason)}."]})
    if action is Action.CANCEL and reason is not None and reason not in CALLER_CANCEL_REASONS:
        # consent_withdrawn is the hub's own, set when a consent is withdrawn.
        raise Invalid({"reason": [f"Use one of: {', '.join(CALLER_CANCEL_REASONS)}."]})
    if action is Action.COMPLETE and outcome not in set(lifecycle.Outcome):
        raise Invalid({"outcome": [f"An outcome code is needed: {', '.join(lifecycle.Outcome)}."]})

    new_leg = None
    if action is Action.FORWARD:
        if to_organization_id is None:
            raise Invalid({"to_organization_id": ["Name the organization to forward to."]})
        next_organization = _receiving_organization(session, caller, to_organization_id)
        new_leg = _new_leg(
            session, caller, participant=referral.participant, to_organization=next_organization,
            pathway=referral.pathway, stage=referral.stage, priority=referral.priority,
            reason_for_referral=referral.reason_for_referral, needs=referral.needs,
            previous=referral,
        )
        referral.forwarded_to = new_leg.id

    now = utcnow()
    referral.status = target.value
    referral.updated_at = now
    if action is Action.ACKNOWLEDGE:
        referral.acknowledged_at = now
        referral.decide_by = policies.deadline(
            session, organization_id=referral.to_organization_id, pathway=referral.pathway,
            check="decide", priority=referral.priority, start=now)
    elif action is Action.ACCEPT:
        referral.accepted_at = now
        referral.start_by = policies.deadline(
            session, organization_id=referral.to_organization_id, pathway=referral.pathway,
            check="start", priority=referral.priority, start=now)
    elif action is Action.START:
        referral.started_at = now
    elif action is Action.DECLINE:
        referral.decline_reason = reason
    elif action is Action.COMPLETE:
        referral.outcome = outcome
    elif action is Action.CANCEL:
        referral.cancel_reason = reason
    if lifecycle.is_terminal(target):
        referral.closed_at = now
    deadlines.arm_checks(referral)

    _flush_checking_version(session)
    visibility.note_read_ahead(session, caller, new_leg or referral)  # the answer shows it
    _record(session, referral, EVENT_OF_ACTION[action], caller,
            _add_note(session, referral, caller, note))
    if new_leg is not None:  # after `forwarded`, so readers see the handoff in order
        _record(session, new_leg, EventType.REFERRAL_SENT, caller)
        return new_leg
    return referral


def _flush_checking_version(session: Session) -> None:
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
    _flush_checking_version(session)
    _legs_changed(session)
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
