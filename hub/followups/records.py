"""Follow-up records (docs/design.md §10): what the sending counsellor learned when following
up after a completed handoff, and the list of follow-ups due and not yet recorded.

A follow-up is *due* once the scheduler fired its check (`hub.followups.leg_checks`: a
`referral_checks` row `followup_30` or `followup_180`, the moment `referral.followup_due` was
announced).  It stays in the sending organization's list until a record answers it; the 30-day
one also leaves it when the 180-day one comes due (one call then answers the later question),
so each leg appears in the list at most once.  Only participants whose `follow_up_contact`
consent covers the sending organization are listed, and only they may be recorded: the call
is the contact that consent allows.

A record holds codes (reached, situation, still in the destination region) and an optional
note, encrypted at rest and shown only to the sending organization
(`hub.consent.visibility.Reader.followup`).  Its event `referral.followup_recorded` carries the
codes alone, to both organizations of the leg.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, and_, exists, func, or_, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub import crypto
from hub.accounts.callers import Caller
from hub.consent import consents
from hub.crypto import EncryptedText
from hub.db import Base, iso_utc, utcnow
from hub.errors import DomainError, Invalid, NotAllowed
from hub.events.types import EventType
from hub.followups.deadlines import FOLLOW_UP_AFTER
from hub.followups.leg_checks import FIRED
from hub.referrals.legs import Referral, flush_checking_version, record_leg_event, visible_referral
from hub.referrals.lifecycle import Status

AD_HOC = "ad_hoc"
# The scheduled follow-ups, in the order they come due.
SCHEDULED = tuple(FOLLOW_UP_AFTER)


class Situation(StrEnum):
    EMPLOYED = "employed"
    IN_TRAINING = "in_training"
    BUSINESS_RUNNING = "business_running"
    LOOKING_FOR_WORK = "looking_for_work"
    NEEDS_SUPPORT = "needs_support"
    UNKNOWN = "unknown"


DUE_KINDS = (*SCHEDULED, AD_HOC)


class FollowUpRecord(Base):
    """One follow-up call (or attempt), recorded by the leg's sending organization."""

    __tablename__ = "followup_records"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), index=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    # followup_30, followup_180 or ad_hoc: which question it answers.
    due: Mapped[str] = mapped_column(String(20))
    reached: Mapped[bool] = mapped_column(Boolean)
    situation: Mapped[str] = mapped_column(String(30))
    # None: not known (the person was not reached, or did not say).
    in_destination_region: Mapped[bool | None] = mapped_column(Boolean)
    # Free text about the person: encrypted, shown to the sending organization only.
    note: Mapped[str | None] = mapped_column(EncryptedText)
    recorded_at: Mapped[datetime]
    # The event's actor: "user:<id>" or "client:<client_id>".
    recorded_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        # A scheduled follow-up is answered once; ad hoc calls as often as they happen.
        Index("uq_followup_records_scheduled", "referral_id", "due", unique=True,
              postgresql_where=text("due <> 'ad_hoc'"), sqlite_where=text("due <> 'ad_hoc'")),
    )


def _record_owner(session: Session, record: FollowUpRecord) -> uuid.UUID | None:
    referral = session.get(Referral, record.referral_id)
    return referral.participant_id if referral is not None else None


# The note is the person's data, sealed under their own key (docs/design.md §15).
crypto.personal_data(FollowUpRecord, ("note",), _record_owner)


class FollowUpAlreadyRecorded(DomainError):
    """The scheduled follow-up named was recorded already."""

    http_status = 409
    title = "Follow-up already recorded"
    slug = "followup-already-recorded"

    def __init__(self, referral_id: uuid.UUID, due: str) -> None:
        super().__init__(
            f"The {due} follow-up of referral {referral_id} was recorded already. Read it with "
            f"GET /api/v1/referrals/{referral_id}/followups; record another call with "
            f"\"due\": \"ad_hoc\".")
        self.referral_id, self.due = referral_id, due

    def members(self) -> dict[str, Any]:
        return {"referral_id": str(self.referral_id), "due": self.due}


class LegNotCompleted(DomainError):
    """Follow-ups come after a completed handoff."""

    http_status = 409
    title = "Referral not completed"
    slug = "referral-not-completed"

    def __init__(self, referral_id: uuid.UUID, status: str) -> None:
        super().__init__(
            f"Referral {referral_id} is '{status}': follow-ups are recorded once the receiving "
            f"organization completed it.")
        self.status = status

    def members(self) -> dict[str, Any]:
        return {"referral_status": self.status}


# --- what is due ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DueFollowUp:
    referral: Referral
    due: str
    due_at: datetime


def _due_query(organization_id: uuid.UUID, now: datetime) -> Any:
    checks = FIRED
    later = FIRED.alias("later_check")
    answered = exists().where(FollowUpRecord.referral_id == checks.c.referral_id,
                              FollowUpRecord.due == checks.c.kind)
    # A follow-up is superseded once a later one came due.
    superseded = or_(*(and_(checks.c.kind == earlier,
                            exists().where(later.c.referral_id == checks.c.referral_id,
                                           later.c.kind.in_(SCHEDULED[index + 1:])))
                       for index, earlier in enumerate(SCHEDULED[:-1])))
    return (select(Referral, checks.c.kind, checks.c.due_at)
            .join(checks, checks.c.referral_id == Referral.id)
            .where(Referral.from_organization_id == organization_id,
                   Referral.status == Status.COMPLETED.value,
                   checks.c.kind.in_(SCHEDULED), ~answered, ~superseded,
                   consents.covering(Referral.participant_id, organization_id,
                                     consents.Purpose.FOLLOW_UP_CONTACT.value, now)))


def due_followups(session: Session, caller: Caller, *, now: datetime | None = None,
                  after: tuple[datetime, uuid.UUID] | None = None, limit: int = 50
                  ) -> list[DueFollowUp]:
    """The caller's follow-ups due and not yet recorded, oldest first (keyset on due_at, leg)."""
    checks = FIRED
    query = _due_query(caller.organization_id, now or utcnow())
    if after is not None:
        due_at, referral_id = after
        query = query.where((checks.c.due_at > due_at)
                            | ((checks.c.due_at == due_at) & (Referral.id > referral_id)))
    rows = session.execute(query.order_by(checks.c.due_at, Referral.id).limit(limit)).all()
    return [DueFollowUp(leg, kind, due_at) for leg, kind, due_at in rows]


def count_due(session: Session, caller: Caller, now: datetime | None = None) -> int:
    """How many follow-ups are waiting for the caller's organization (the portal's menu)."""
    inner = _due_query(caller.organization_id, now or utcnow()).subquery()
    return session.scalar(select(func.count()).select_from(inner)) or 0


def fired_followups(session: Session, referral_id: uuid.UUID) -> list[str]:
    """The scheduled follow-ups of the leg that came due, in the order they did."""
    fired = set(session.scalars(select(FIRED.c.kind).where(
        FIRED.c.referral_id == referral_id, FIRED.c.kind.in_(SCHEDULED))))
    return [kind for kind in SCHEDULED if kind in fired]


def records_of(session: Session, referral_id: uuid.UUID) -> list[FollowUpRecord]:
    return list(session.scalars(select(FollowUpRecord).where(
        FollowUpRecord.referral_id == referral_id)
        .order_by(FollowUpRecord.recorded_at, FollowUpRecord.id)))


def open_followup(session: Session, referral_id: uuid.UUID) -> str | None:
    """The scheduled follow-up a record answers by default: the latest that came due, if
    not recorded yet (an earlier one unrecorded is superseded by it); None when none is open."""
    fired = fired_followups(session, referral_id)
    if not fired:
        return None
    recorded = {r.due for r in records_of(session, referral_id)}
    return None if fired[-1] in recorded else fired[-1]


# --- recording -----------------------------------------------------------------------------

def record_followup(session: Session, caller: Caller, referral_id: uuid.UUID, *,
                    reached: bool, situation: str, in_destination_region: bool | None,
                    note: str | None = None, due: str | None = None) -> FollowUpRecord:
    """Record a follow-up of a completed leg for its sending organization.

    Raises NotFound (not a party), NotAllowed (the receiving side or a coordinator),
    LegNotCompleted, ConsentRequired (no active `follow_up_contact` consent covers the
    caller's organization), Invalid (a scheduled follow-up not due yet) or
    FollowUpAlreadyRecorded."""
    leg = visible_referral(session, caller, referral_id)
    if leg.from_organization_id != caller.organization_id:
        raise NotAllowed("Only the organization that sent the referral records its follow-ups.")
    if leg.status != Status.COMPLETED.value:
        raise LegNotCompleted(leg.id, leg.status)
    if situation not in set(Situation):
        raise Invalid({"situation": [f"One of: {', '.join(Situation)}."]})
    consents.lock_participant(session, leg.participant_id)
    if not consents.covers(session, leg.participant, caller.organization_id,
                           consents.Purpose.FOLLOW_UP_CONTACT, utcnow()):
        raise consents.ConsentRequired(leg.participant_id, caller.organization_id,
                                       consents.Purpose.FOLLOW_UP_CONTACT.value)
    recorded = {r.due for r in records_of(session, leg.id)}
    if due is None:
        due = open_followup(session, leg.id) or AD_HOC
    elif due != AD_HOC:
        if due not in fired_followups(session, leg.id):
            days = FOLLOW_UP_AFTER[due].days if due in FOLLOW_UP_AFTER else None
            raise Invalid({"due": [
                f"The {days}-day follow-up is not due yet; record this call as \"ad_hoc\"."
                if days else f"One of: {', '.join(DUE_KINDS)}."]})
        if due in recorded:
            raise FollowUpAlreadyRecorded(leg.id, due)
    now = utcnow()
    record = FollowUpRecord(
        id=uuid.uuid4(), referral_id=leg.id, organization_id=caller.organization_id, due=due,
        reached=reached, situation=situation, in_destination_region=in_destination_region,
        note=note.strip() if note and note.strip() else None, recorded_at=now,
        recorded_by=caller.actor)
    session.add(record)
    leg.updated_at = now  # a new version of the leg: its event's sequence
    flush_checking_version(session)
    record_leg_event(session, leg, EventType.REFERRAL_FOLLOWUP_RECORDED, caller,
                     extra={"followup": codes(record)})
    return record


def codes(record: FollowUpRecord) -> dict[str, Any]:
    """The record without its note: what events carry and the receiving side may read."""
    return {"id": str(record.id), "referral_id": str(record.referral_id), "due": record.due,
            "reached": record.reached, "situation": record.situation,
            "in_destination_region": record.in_destination_region,
            "recorded_at": iso_utc(record.recorded_at), "recorded_by": record.recorded_by}
