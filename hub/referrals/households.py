"""Households (docs/design.md §12): participants of one organization who move together
(spouse, family). Their legs are prepared together: a leg of a member shows its sending
organization the other members' open legs, the same referral can go to every member at once
(`send_for_household`, one leg each under that member's own consent), and reports count
households beside participants.

A participant is in one household at most (the members table's primary key says so).
Members can be added and removed later (`add_members`, `remove_member`); a household left
with fewer than two people dissolves: one person alone is no household (reports count them as
a household of one anyway).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.accounts.callers import Caller
from hub.db import Base, locked_row, utcnow
from hub.errors import DomainError, Invalid, NotAllowed, NotFound
from hub.referrals.legs import OPEN_STATUSES, Referral
from hub.referrals.participants import Participant


class Household(Base):
    __tablename__ = "households"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       index=True)
    created_at: Mapped[datetime]


class HouseholdMember(Base):
    __tablename__ = "household_members"

    # One household per participant: the key.
    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"),
                                                      primary_key=True)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)


@dataclass(eq=False)
class AlreadyInHousehold(DomainError):
    http_status = 409
    title = "Already in a household"
    slug = "already-in-household"

    participant_ids: list[uuid.UUID] = field(default_factory=list)

    def __str__(self) -> str:
        return ("A participant is in one household at most: "
                f"{', '.join(str(p) for p in self.participant_ids)} already belong to one. "
                "Leave them out, or add the others to that household.")

    def members(self) -> dict[str, Any]:
        return {"participant_ids": [str(p) for p in self.participant_ids]}


def _free_own_participants(session: Session, caller: Caller, participant_ids: list[uuid.UUID],
                           *, field_name: str = "participant_ids",
                           joining: uuid.UUID | None = None) -> list[uuid.UUID]:
    """The participants, each once, once checked: of the caller's organization and in no
    household yet (but `joining`, the household they are added to)."""
    if caller.is_coordinator:
        raise NotAllowed("Coordination bodies watch the network; they register no one.")
    chosen = list(dict.fromkeys(participant_ids))
    own = set(session.scalars(select(Participant.id).where(
        Participant.id.in_(chosen), Participant.organization_id == caller.organization_id)))
    strangers = [str(p) for p in chosen if p not in own]
    if strangers:
        raise Invalid({field_name: [
            f"Not participants of your organization: {', '.join(strangers)}."]})
    in_one = select(HouseholdMember.participant_id).where(
        HouseholdMember.participant_id.in_(chosen))
    if joining is not None:
        in_one = in_one.where(HouseholdMember.household_id != joining)
    taken = list(session.scalars(in_one))
    if taken:
        raise AlreadyInHousehold(sorted(taken))
    return chosen


def create_household(session: Session, caller: Caller, participant_ids: list[uuid.UUID]
                     ) -> Household:
    """Link participants of the caller's organization into a new household."""
    if len(set(participant_ids)) < 2:
        raise Invalid({"participant_ids": ["A household links at least two participants."]})
    chosen = _free_own_participants(session, caller, participant_ids)
    household = Household(id=uuid.uuid4(), organization_id=caller.organization_id,
                          created_at=utcnow())
    session.add(household)
    session.flush()
    _link(session, household.id, chosen)
    return household


def add_members(session: Session, caller: Caller, household_id: uuid.UUID,
                participant_ids: list[uuid.UUID]) -> Household:
    """Add participants of the caller's organization to one of its households; those already
    in it stay (adding twice changes nothing), those in another one are refused (409)."""
    household = visible_household(session, caller, household_id, lock=True)
    chosen = _free_own_participants(session, caller, participant_ids,
                                    field_name="participant_id", joining=household.id)
    present = set(members_of(session, household.id))
    _link(session, household.id, [p for p in chosen if p not in present])
    return household


def _link(session: Session, household_id: uuid.UUID, participant_ids: list[uuid.UUID]) -> None:
    """Make the participants members of the household. One that another transaction put in
    a household since `_free_own_participants` looked (the members' key allows one each) is
    refused as if it had been seen then (409), not as a failed write."""
    try:
        with session.begin_nested():
            session.add_all(HouseholdMember(participant_id=p, household_id=household_id)
                            for p in participant_ids)
            session.flush()
    except IntegrityError:
        raise AlreadyInHousehold(sorted(session.scalars(
            select(HouseholdMember.participant_id).where(
                HouseholdMember.participant_id.in_(participant_ids),
                HouseholdMember.household_id != household_id)))) from None


def remove_member(session: Session, caller: Caller, household_id: uuid.UUID,
                  participant_id: uuid.UUID) -> Household | None:
    """Take a person out of one of the caller's households. Left with fewer than two people,
    the household dissolves (None): the one left is no longer linked to anyone. Their legs
    are untouched; only what each leg shows of the others changes."""
    household = visible_household(session, caller, household_id, lock=True)
    member = session.get(HouseholdMember, participant_id)
    if member is None or member.household_id != household.id:
        raise NotFound("member of this household", participant_id)
    session.delete(member)
    session.flush()
    left = members_of(session, household.id)
    if len(left) >= 2:
        return household
    for remaining in left:
        session.delete(session.get(HouseholdMember, remaining))
    session.flush()
    session.delete(household)
    session.flush()
    return None


def members_of(session: Session, household_id: uuid.UUID) -> list[uuid.UUID]:
    return list(session.scalars(select(HouseholdMember.participant_id).where(
        HouseholdMember.household_id == household_id).order_by(HouseholdMember.participant_id)))


def household_of(session: Session, participant_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalar(select(HouseholdMember.household_id).where(
        HouseholdMember.participant_id == participant_id))


def visible_household(session: Session, caller: Caller, household_id: uuid.UUID, *,
                      lock: bool = False) -> Household:
    """One of the caller's households (404 for any other).  With `lock`, for an edit: locked
    until the transaction ends, so that edits of one household take turns and a removal
    counts the members another one left (two removals at once would otherwise each see two
    people and keep a household of one)."""
    household = (locked_row(session, Household, household_id) if lock
                 else session.get(Household, household_id))
    if household is None or household.organization_id != caller.organization_id:
        raise NotFound("household", household_id)
    return household


def others_open_legs(session: Session, referral: Referral, organization_id: uuid.UUID
                     ) -> list[Referral]:
    """The open legs of the other members of the leg's participant's household that
    `organization_id` sent: what its counsellor prepares together with this leg."""
    household_id = household_of(session, referral.participant_id)
    if household_id is None:
        return []
    others = [p for p in members_of(session, household_id) if p != referral.participant_id]
    return list(session.scalars(select(Referral).where(
        Referral.participant_id.in_(others), Referral.status.in_(OPEN_STATUSES),
        Referral.from_organization_id == organization_id)
        .order_by(Referral.created_at, Referral.id)))


def households_among(session: Session, participant_ids: set[uuid.UUID]) -> int:
    """How many households these participants make: each household once, and each
    participant in none as a household of one."""
    if not participant_ids:
        return 0
    linked = {participant: household for participant, household in session.execute(
        select(HouseholdMember.participant_id, HouseholdMember.household_id).where(
            HouseholdMember.participant_id.in_(participant_ids)))}
    return len({linked.get(p, p) for p in participant_ids})
