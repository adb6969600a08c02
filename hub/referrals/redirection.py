"""Redirecting a referral: the sending organization sends the participant to another partner
when the first one declined, let the leg expire (docs/design.md §2: "the sender is told to
redirect"), or has not decided yet.

The lifecycle has no transition of its own for this: an open leg is cancelled (reason
`referred_elsewhere`) and a new leg is sent, linked to the first by `forwarded_from`, so both
stay in one chain and the participant's path shows where they went and why.  Both happen in
the caller's transaction: a new leg refused (no consent for that partner) cancels nothing.

A leg of a participant another organization registered (the sender received the person and
forwarded them) is redirected as it was forwarded (docs/design.md §5): the participant's
consent must still cover the sender, whose part in the path rests on it, and must cover the
new receiver; the reason and needs go from leg to leg unchanged, never shown to the sender,
who may not read the person's data (`hub.consent.visibility`: no open leg received).
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.consent import consents
from hub.errors import NotFound
from hub.referrals import handoffs, legs, lifecycle
from hub.referrals.legs import Referral
from hub.referrals.lifecycle import Action, Party, Status

# Closed without serving the participant, or still waiting for the receiver's decision.
REDIRECTABLE = frozenset({Status.DECLINED, Status.EXPIRED, Status.SENT, Status.ACKNOWLEDGED})


def may_redirect(session: Session, leg: Referral, organization_id: uuid.UUID) -> bool:
    """The sender may redirect a leg in a redirectable status, once (no later leg yet)."""
    return (leg.party_of(organization_id) is Party.SENDER
            and Status(leg.status) in REDIRECTABLE and leg.forwarded_to is None
            and session.scalar(select(Referral.id).where(Referral.forwarded_from == leg.id)
                               .limit(1)) is None)


def leg_to_redirect(session: Session, caller: Caller, referral_id: uuid.UUID) -> Referral:
    """The leg, if `caller` may redirect it now.  Raises NotFound (not visible),
    NotYourTurn (the receiver's side) or TransitionRefused (accepted, closed, redirected)."""
    leg = legs.visible_referral(session, caller, referral_id)
    status = Status(leg.status)
    if leg.party_of(caller.organization_id) is not Party.SENDER:
        raise lifecycle.NotYourTurn(Action.CANCEL, Party.SENDER)
    if not may_redirect(session, leg, caller.organization_id):
        raise lifecycle.TransitionRefused(
            status, Action.CANCEL, tuple(lifecycle.allowed_actions(status, Party.SENDER)))
    return leg


def registered_elsewhere(leg: Referral, caller: Caller) -> bool:
    """The leg's participant belongs to another organization than the caller's."""
    return leg.participant.organization_id != caller.organization_id


def still_trusted(session: Session, caller: Caller, leg: Referral) -> bool:
    """Whether the participant's active consent still covers the caller's organization (what
    a page asks before offering the redirect of a leg of someone registered elsewhere)."""
    return consents.covers(session, leg.participant, caller.organization_id,
                          consents.Purpose.REFERRAL_SHARING)


def redirect_onward_allowed(session: Session, caller: Caller, leg: Referral) -> None:
    """Raise ConsentRequired (naming the caller's organization) unless the participant's
    active consent still covers the caller's organization; asked under the participant's
    lock, so a withdrawal racing the redirect is seen."""
    participant = consents.locked_participant(session, leg.participant_id)
    if participant is None:
        raise NotFound("participant", leg.participant_id)
    consents.require_referral_sharing(session, participant, caller.organization_id)


def redirect_referral(session: Session, caller: Caller, referral_id: uuid.UUID, *,
                      to_organization_id: uuid.UUID, pathway: str, priority: str = "routine",
                      stage: str | None = None, reason_for_referral: str | None = None,
                      needs: list[str] | None = None,
                      needed_by: date | None = None) -> Referral:
    """Send the participant of leg `referral_id` to another organization; returns the new
    leg.  Raises what `send_referral` and `transition` raise, and TransitionRefused when the
    leg is past redirecting (accepted, in progress, completed...).  For a participant
    another organization registered, `reason_for_referral` and `needs` are the leg's own
    (those given are ignored), and ConsentRequired names the caller's organization when the
    consent no longer covers it."""
    leg = leg_to_redirect(session, caller, referral_id)
    was_open = Status(leg.status) in lifecycle.OPEN
    if registered_elsewhere(leg, caller):
        redirect_onward_allowed(session, caller, leg)
        new_leg = handoffs.send_onward(session, caller, leg,
                                        to_organization_id=to_organization_id,
                                        pathway=pathway, priority=priority, stage=stage)
    else:
        new_leg = handoffs.send_referral(
            session, caller, participant_id=leg.participant_id,
            to_organization_id=to_organization_id, pathway=pathway, priority=priority,
            stage=stage, reason_for_referral=reason_for_referral, needs=needs,
            forwarded_from=leg.id, needed_by=needed_by)
    if was_open:
        handoffs.transition(session, caller, leg.id, Action.CANCEL,
                             reason=lifecycle.CancelReason.REFERRED_ELSEWHERE.value)
    return new_leg
