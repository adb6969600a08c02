"""What the link of a new-leg mail lets its holder do (design §14): see the leg as the
receiving organization would in the portal, and take the receiver's next step.

Each step is the API's and the portal's own use case (`hub.referrals.handoffs.transition`),
called for the receiving organization with actor `contact:<id>`, so the lifecycle's rules,
the consent checks, the events and the leg's history are the same whichever way a partner
answers.  Forwarding is left to the portal: it needs the directory to choose from.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.accounts.users import names_of
from hub.consent.visibility import Reader
from hub.directory import editing
from hub.directory.organizations import Contact, Organization
from hub.errors import Invalid
from hub.events.feed import subject_history
from hub.mailbox.links import Holder
from hub.referrals import handoffs, lifecycle
from hub.referrals.legs import Referral
from hub.referrals.lifecycle import Action, Party, Status

# The steps a link offers, in the lifecycle's order (no forward: see the module's text).
LINK_ACTIONS = (Action.ACKNOWLEDGE, Action.ACCEPT, Action.DECLINE, Action.START,
                Action.COMPLETE)


def caller_of(holder: Holder) -> Caller:
    """The receiving organization, acting through the contact the link was made for."""
    return Caller(organization_id=holder.leg.to_organization_id, actor=holder.actor)


def actions_now(leg: Referral) -> list[str]:
    """The steps the receiver may take on the leg now (none once it is closed)."""
    allowed = set(lifecycle.allowed_actions(Status(leg.status), Party.RECEIVER))
    return [action.value for action in LINK_ACTIONS if action in allowed]


@dataclass
class LegView:
    """The leg as the link page shows it."""

    leg: dict[str, Any]
    actions: list[str]
    sender: str
    receiver: str
    contact: str
    timeline: list[dict[str, Any]]


def actor_names(session: Session, actors: set[str]) -> dict[str, str]:
    """Who each actor of a leg's history is, for people to read: a portal user's or a
    directory contact's name and organization (codes for partner systems and the hub are
    named by the page)."""
    names: dict[str, str] = {}
    user_ids, contact_ids = set(), set()
    for actor in actors:
        kind, _, raw = actor.partition(":")
        with contextlib.suppress(ValueError):
            if kind == "user":
                user_ids.add(uuid.UUID(raw))
            elif kind == "contact":
                contact_ids.add(uuid.UUID(raw))
    for user_id, user in names_of(session, user_ids).items():
        names[f"user:{user_id}"] = f"{user.name} ({user.organization.name})"
    if contact_ids:
        for contact, organization in session.execute(
                select(Contact, Organization.name).join(
                    Organization, Organization.id == Contact.organization_id)
                .where(Contact.id.in_(contact_ids))):
            names[f"contact:{contact.id}"] = (
                f"{contact.name or contact.role or contact.email} ({organization})")
    return names


def view(session: Session, holder: Holder, pseudonym_key: bytes) -> LegView:
    """The leg for the link's holder: what the receiving organization may see of it (decided
    and logged by `hub.consent.visibility`), its history and the steps open now.  Reads
    only."""
    leg = holder.leg
    reader = Reader(session, caller_of(holder), pseudonym_key)
    shown = reader.referral(leg)
    events = subject_history(session, leg.subject)
    actors = actor_names(session, {event.actor for event in events})
    organizations = dict(session.execute(select(Organization.id, Organization.name).where(
        Organization.id.in_({leg.from_organization_id, leg.to_organization_id}))).all())
    return LegView(
        leg=shown, actions=actions_now(leg),
        sender=organizations.get(leg.from_organization_id, ""),
        receiver=organizations.get(leg.to_organization_id, ""),
        contact=actor_names(session, {holder.actor}).get(holder.actor, ""),
        timeline=[{"type": event.type, "time": event.time, "actor": event.actor,
                   "actor_name": actors.get(event.actor),
                   "status": (event.data.get("referral") or {}).get("status")}
                  for event in events])


def asks_for_capacity(leg: Referral) -> bool:
    """Whether the page asks the receiver to say how full it is: after it declined the leg
    for lack of room (design §14), so counsellors stop choosing it while it is full."""
    return leg.decline_reason == lifecycle.DeclineReason.NO_CAPACITY.value


def declare_capacity(session: Session, holder: Holder, *, capacity: str,
                     until: date | None, waitlist_band: str | None) -> Organization:
    """The receiver's "we are full until…" from the link page, for its whole entry."""
    if not asks_for_capacity(holder.leg):
        raise Invalid({"capacity": ["Said from the page of a referral declined for lack of "
                                    "room; otherwise in the directory entry."]})
    organization = session.get(Organization, holder.leg.to_organization_id)
    assert organization is not None  # the leg's receiver
    return editing.declare_capacity(session, organization, capacity=capacity, until=until,
                                    waitlist_band=waitlist_band)


def act(session: Session, holder: Holder, action: str, *, expected_version: int | None,
        reason: str | None = None, outcome: str | None = None,
        note: str | None = None) -> Referral:
    """Take one step on the leg for the link's holder: `transition`, as the API does it.
    Raises what it raises (a closed leg: TransitionRefused; a page read before someone else
    answered: VersionMismatch), and Invalid for a step a link does not offer."""
    try:
        chosen = Action(action)
    except ValueError:
        chosen = None
    if chosen not in LINK_ACTIONS:
        raise Invalid({"action": [
            f"One of: {', '.join(a.value for a in LINK_ACTIONS)}."]})
    assert chosen is not None
    return handoffs.transition(session, caller_of(holder), holder.leg.id, chosen,
                               expected_version=expected_version, reason=reason,
                               outcome=outcome, note=note)
