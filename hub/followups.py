"""The follow-up checks of DESIGN §6: missed deadlines, expiry, post-handoff follow-ups.

Each check reads the legs that are due through a partial index on a due-at column (never one
scheduler job per leg), and fires at most once per leg and kind: the `referral_checks` row is
inserted first, with its primary key as the last line of defence when two schedulers race.
A check handles a bounded batch per pass, so a scheduler back after a day catches up over a few
passes without a storm.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ForeignKey, String, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from hub import consent, lifecycle
from hub.db import Base
from hub.directory import Organization
from hub.events import EventType
from hub.lifecycle import Action, Party, Status
from hub.referrals import Referral, _record
from hub.timestamps import iso_utc

log = logging.getLogger(__name__)

BATCH = 500
FOLLOW_UP_AFTER = {"followup_30": timedelta(days=30), "followup_180": timedelta(days=180)}


class ReferralCheck(Base):
    """A check that fired for a leg: one row per (leg, kind), ever."""

    __tablename__ = "referral_checks"

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime]


@dataclass(frozen=True)
class DeadlineCheck:
    """A deadline that applies while a leg is in `status`, due at `column`."""

    kind: str
    status: Status
    column: Any


DEADLINES = (
    DeadlineCheck("acknowledge", Status.SENT, Referral.acknowledge_by),
    DeadlineCheck("decide", Status.ACKNOWLEDGED, Referral.decide_by),
    DeadlineCheck("start", Status.ACCEPTED, Referral.start_by),
)


def _not_fired(kind: str) -> Any:
    return ~exists().where(ReferralCheck.referral_id == Referral.id, ReferralCheck.kind == kind)


def _due(session: Session, status: Status, column: Any, before: datetime, kind: str,
         limit: int) -> list[Referral]:
    query = (select(Referral)
             .where(Referral.status == status.value, column <= before, _not_fired(kind))
             .order_by(column).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Referral)
    return list(session.scalars(query))


def _claim(session: Session, leg: Referral, kind: str, due_at: datetime, now: datetime) -> bool:
    """Insert the (leg, kind) row; False when it fired already (another scheduler won)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    inserted = session.execute(
        insert(ReferralCheck)
        .values(referral_id=leg.id, kind=kind, due_at=due_at, fired_at=now)
        .on_conflict_do_nothing()
        .returning(ReferralCheck.referral_id)
    ).first()
    return inserted is not None


def _fire(session: Session, leg: Referral, kind: str, due_at: datetime, now: datetime,
          act: Callable[[], None]) -> bool:
    """Claim and act for one leg in a savepoint: a leg that changed meanwhile (its receiver
    answered) is left for the next pass, which sees its new state."""
    try:
        with session.begin_nested():
            if not _claim(session, leg, kind, due_at, now):
                return False
            act()
            session.flush()
    except StaleDataError:
        session.expire(leg)
        return False
    return True


def deadlines_missed(session: Session, now: datetime, limit: int = BATCH) -> int:
    """`referral.deadline_missed` to both organizations for every leg past a deadline."""
    fired = 0
    for check in DEADLINES:
        for leg in _due(session, check.status, check.column, now, check.kind, limit):
            due_at = getattr(leg, check.column.key)

            def act(leg: Referral = leg, check: DeadlineCheck = check,
                    due_at: datetime = due_at) -> None:
                leg.updated_at = now  # the leg has a new event: its version moves on
                session.flush()
                _record(session, leg, EventType.REFERRAL_DEADLINE_MISSED, None, extra={
                    "check": check.kind, "due_at": iso_utc(due_at), "source": "scheduler"})

            fired += _fire(session, leg, check.kind, due_at, now, act)
    return fired


def suggestions(session: Session, leg: Referral, limit: int = 5) -> list[dict[str, str]]:
    """Other organizations of the receiving organization's region with room, to redirect to."""
    receiver = session.get(Organization, leg.to_organization_id)
    if receiver is None:
        return []
    found = session.scalars(
        select(Organization).where(
            Organization.region == receiver.region,
            Organization.id.not_in([leg.to_organization_id, leg.from_organization_id]),
            Organization.kind != "coordination",
            Organization.capacity == "open",
        ).order_by(Organization.name).limit(limit))
    return [{"id": str(o.id), "name": o.name, "kind": o.kind, "region": o.region}
            for o in found]


def expirations(session: Session, now: datetime, limit: int = BATCH) -> int:
    """Legs unacknowledged at twice the deadline expire; the sender is told to redirect."""
    fired = 0
    for leg in _due(session, Status.SENT, Referral.expire_by, now, "expire", limit):
        assert leg.expire_by is not None

        def act(leg: Referral = leg) -> None:
            lifecycle.next_status(Status(leg.status), Action.EXPIRE, Party.SCHEDULER)
            leg.status = Status.EXPIRED.value
            leg.updated_at = leg.closed_at = now
            session.flush()
            _record(session, leg, EventType.REFERRAL_EXPIRED, None,
                    extra={"redirect_to": suggestions(session, leg)})

        fired += _fire(session, leg, "expire", leg.expire_by, now, act)
    return fired


def followups_due(session: Session, now: datetime, limit: int = BATCH) -> int:
    """`referral.followup_due` to the sending organization 30 and 180 days after completion,
    only with the participant's `follow_up_contact` consent (else the check is recorded as
    skipped, so it is not looked at again)."""
    fired = 0
    for kind, after in FOLLOW_UP_AFTER.items():
        for leg in _due(session, Status.COMPLETED, Referral.closed_at, now - after, kind, limit):
            assert leg.closed_at is not None
            due_at = leg.closed_at + after
            allowed = consent.covers(session, leg.participant, leg.from_organization_id,
                                     consent.Purpose.FOLLOW_UP_CONTACT, now)

            def act(leg: Referral = leg, kind: str = kind, due_at: datetime = due_at,
                    allowed: bool = allowed) -> None:
                if not allowed:
                    return  # recorded as fired: skipped for lack of consent, once
                leg.updated_at = now
                session.flush()
                _record(session, leg, EventType.REFERRAL_FOLLOWUP_DUE, None,
                        extra={"check": kind, "due_at": iso_utc(due_at)},
                        audience={leg.from_organization_id})

            fired += _fire(session, leg, kind, due_at, now, act) and allowed
    return fired


class OrganizationCheck(Base):
    """A directory-validation reminder that fired: once per organization and validation it
    is about (a new validation starts a new 12 months)."""

    __tablename__ = "organization_checks"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       primary_key=True)
    last_validated_at: Mapped[datetime] = mapped_column(primary_key=True)
    fired_at: Mapped[datetime]


VALIDATION_EVERY = timedelta(days=365)


def validations_due(session: Session, now: datetime, limit: int = BATCH) -> int:
    """`organization.validation_due` for directory entries not validated for 12 months."""
    from hub.events import record
    from hub.events.store import Event

    not_fired = ~exists().where(
        OrganizationCheck.organization_id == Organization.id,
        OrganizationCheck.last_validated_at == Organization.last_validated_at)
    query = (select(Organization)
             .where(Organization.last_validated_at <= now - VALIDATION_EVERY, not_fired)
             .order_by(Organization.last_validated_at).limit(limit))
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    fired = 0
    for organization in session.scalars(query):
        due_at = organization.last_validated_at + VALIDATION_EVERY
        claimed = session.execute(
            insert(OrganizationCheck)
            .values(organization_id=organization.id,
                    last_validated_at=organization.last_validated_at, fired_at=now)
            .on_conflict_do_nothing().returning(OrganizationCheck.organization_id)).first()
        if claimed is None:
            continue
        subject = f"organizations/{organization.id}"
        previous = session.scalar(select(Event.sequence).where(Event.subject == subject)
                                  .order_by(Event.sequence.desc()).limit(1)) or 0
        record(session, EventType.ORGANIZATION_VALIDATION_DUE, subject=subject,
               sequence=previous + 1, source_organization_id=None, actor="scheduler",
               data={"organization": {"id": str(organization.id), "name": organization.name,
                                      "last_validated_at": iso_utc(
                                          organization.last_validated_at),
                                      "due_at": iso_utc(due_at)}},
               audience={organization.id})
        fired += 1
    return fired
