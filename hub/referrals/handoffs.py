"""Handoffs: the use cases that send a referral, send it onward, and move a leg through its
lifecycle (acknowledge, accept, decline, start, complete, forward, cancel).

Each loads the leg (`hub.referrals.legs`), asks the rules (`hub.referrals.lifecycle`), checks
consent, applies the change and records the event, all in the caller's transaction (flushed,
never committed).  What the caller is then shown is logged by `hub.consent.visibility`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Uuid, bindparam, exists, select
from sqlalchemy.orm import Session, aliased

from hub.accounts.callers import Caller
from hub.consent import consents, visibility
from hub.db import UTCDateTime, utcnow
from hub.directory.organizations import Organization
from hub.errors import Invalid, NotAllowed, NotFound, VersionMismatch
from hub.events.types import EventType
from hub.followups import deadlines, policies
from hub.opportunities import offers
from hub.referrals import checklists, households, lifecycle
from hub.referrals.legs import (
    CALLER_CANCEL_REASONS,
    EVENT_OF_ACTION,
    OPEN_LEGS_KNOWN,
    OPEN_STATUSES,
    STARTED_CHAINS,
    Referral,
    add_note,
    flush_checking_version,
    forget_leg_counts,
    record_leg_event,
    visible_referral,
)
from hub.referrals.lifecycle import Action, Status
from hub.referrals.participants import Participant

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


def _check_needed_by(needed_by: date | None, time_zone: str) -> None:
    if needed_by is not None and needed_by < utcnow().astimezone(ZoneInfo(time_zone)).date():
        raise Invalid({"needed_by": [
            f"{needed_by.isoformat()} is past: give the day the participant is needed there "
            "(today or later), or leave it out."]})


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
    needed_by: date | None = None,
    opportunity_id: uuid.UUID | None = None,
) -> Referral:
    consents.require_referral_sharing(session, participant, to_organization.id)
    now = utcnow()
    leg_id = uuid.uuid4()
    # The policy in force for this receiver, pathway and priority (docs/design.md §6).
    acknowledge_days = policies.business_days(
        session, organization_id=to_organization.id, pathway=pathway, check="acknowledge",
        priority=priority)
    time_zone = policies.time_zone_of(session, to_organization.id)
    acknowledge_by = deadlines.deadline("acknowledge", priority, now,
                                        business_days=acknowledge_days, time_zone=time_zone)
    referral = Referral(
        id=leg_id,
        participant=participant,
        chain_id=previous.chain_id if previous else leg_id,
        from_organization_id=caller.organization_id,
        to_organization_id=to_organization.id,
        pathway=pathway,
        stage=stage,
        priority=priority,
        needed_by=needed_by,
        opportunity_id=opportunity_id,
        reason_for_referral=reason_for_referral,
        needs=list(needs),
        status=Status.SENT.value,
        forwarded_from=previous.id if previous else None,
        created_at=now,
        updated_at=now,
        acknowledge_by=deadlines.bounded(acknowledge_by, priority, needed_by, time_zone),
        expire_by=deadlines.deadline("acknowledge", priority, now, times=2,
                                     business_days=acknowledge_days, time_zone=time_zone),
    )
    deadlines.arm_checks(referral)
    session.add(referral)
    session.flush()
    checklists.add_defaults(session, referral)  # after the leg's row: they refer to it
    forget_leg_counts(session)
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
    needed_by: date | None = None,
    opportunity_id: uuid.UUID | None = None,
) -> Referral:
    """Create a leg and send it: the `referral.sent` event goes to both organizations.

    `needed_by` (the day the participant is needed there) bounds an urgent leg's deadlines.
    `opportunity_id` makes the participant a candidate for an open opportunity; the leg must
    go to its publisher (`offers.check_leg_to`)."""

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
    _check_needed_by(needed_by, to_organization.time_zone or deadlines.DEFAULT_TIME_ZONE)
    if opportunity_id is not None:
        offers.check_leg_to(session, opportunity_id, to_organization.id)
    referral = _new_leg(
        session, caller, participant=participant, to_organization=to_organization,
        pathway=pathway, stage=stage, priority=priority,
        reason_for_referral=reason_for_referral, needs=needs or [], previous=previous,
        needed_by=needed_by, opportunity_id=opportunity_id,
    )
    visibility.note_read_ahead(session, caller, referral)  # the answer shows the leg
    record_leg_event(session, referral, EventType.REFERRAL_SENT, caller)
    return referral


def send_for_household(
    session: Session, caller: Caller, *, participant_id: uuid.UUID, **referral: Any,
) -> tuple[list[Referral], list[consents.ConsentRequired]]:
    """The same referral for every member of the participant's household (the participant
    alone when in none): one leg each, each under that member's own consent.  Members whose
    consent does not cover the receiver are refused (returned), the others' legs are sent."""
    household_id = households.household_of(session, participant_id)
    members = (households.members_of(session, household_id) if household_id is not None
               else [participant_id])
    # The participant named first, then the others.
    members = [participant_id] + [m for m in members if m != participant_id]
    sent: list[Referral] = []
    refused: list[consents.ConsentRequired] = []
    for member in members:
        try:
            with session.begin_nested():  # a refusal undoes only that member's attempt
                sent.append(send_referral(session, caller, participant_id=member, **referral))
        except consents.ConsentRequired as missing:
            refused.append(missing)
    return sent, refused


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

    participant = consents.locked_participant(session, previous.participant_id)
    if participant is None:
        raise NotFound("participant", previous.participant_id)
    _check_stage(pathway, stage)
    to_organization = _receiving_organization(session, caller, to_organization_id)
    referral = _new_leg(
        session, caller, participant=participant, to_organization=to_organization,
        pathway=pathway, stage=stage, priority=priority,
        reason_for_referral=previous.reason_for_referral, needs=list(previous.needs or []),
        previous=previous, needed_by=previous.needed_by,
    )
    visibility.note_read_ahead(session, caller, referral)  # logs only a read it will make
    record_leg_event(session, referral, EventType.REFERRAL_SENT, caller)
    return referral


def _bounded(session: Session, referral: Referral, due: datetime) -> datetime:
    """The policy's `due`, no later than an urgent leg's `needed_by` allows (§12)."""
    if referral.priority != "urgent" or referral.needed_by is None:
        return due
    return deadlines.bounded(due, referral.priority, referral.needed_by,
                             policies.time_zone_of(session, referral.to_organization_id))


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

    # A leg for an opportunity takes one of its places when accepted: counted under the
    # opportunity's row lock, so two acceptances at once never take more than there are.
    opportunity = None
    if action is Action.ACCEPT and referral.opportunity_id is not None:
        opportunity, taken = offers.before_accept(session, referral.opportunity_id)

    new_leg = None
    if action is Action.FORWARD:
        # The new leg names no opportunity: its receiver is not the one that published it.
        if to_organization_id is None:
            raise Invalid({"to_organization_id": ["Name the organization to forward to."]})
        next_organization = _receiving_organization(session, caller, to_organization_id)
        new_leg = _new_leg(
            session, caller, participant=referral.participant, to_organization=next_organization,
            pathway=referral.pathway, stage=referral.stage, priority=referral.priority,
            reason_for_referral=referral.reason_for_referral, needs=referral.needs,
            previous=referral, needed_by=referral.needed_by,
        )
        referral.forwarded_to = new_leg.id

    now = utcnow()
    referral.status = target.value
    referral.updated_at = now
    if action is Action.ACKNOWLEDGE:
        referral.acknowledged_at = now
        referral.decide_by = _bounded(session, referral, policies.deadline(
            session, organization_id=referral.to_organization_id, pathway=referral.pathway,
            check="decide", priority=referral.priority, start=now))
    elif action is Action.ACCEPT:
        referral.accepted_at = now
        referral.start_by = _bounded(session, referral, policies.deadline(
            session, organization_id=referral.to_organization_id, pathway=referral.pathway,
            check="start", priority=referral.priority, start=now))
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

    flush_checking_version(session)
    visibility.note_read_ahead(session, caller, new_leg or referral)  # the answer shows it
    record_leg_event(session, referral, EVENT_OF_ACTION[action], caller,
            add_note(session, referral, caller, note))
    if opportunity is not None:
        offers.after_accept(session, opportunity, taken, caller)
    if new_leg is not None:  # after `forwarded`, so readers see the handoff in order
        record_leg_event(session, new_leg, EventType.REFERRAL_SENT, caller)
        return new_leg
    return referral

