"""One leg, seen by either side: its state, deadlines, timeline (each event, who, when), the
participant's chain, and the actions the user's organization may take on it now, each a
small form posted to `/legs/<id>/<action>` and carried out by
`hub.referrals.handoffs.transition`."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug import Response

from hub.accounts.users import RECEIVING_ROLES, SENDING_ROLES
from hub.api.common import pseudonym_key
from hub.consent.visibility import Reader, pseudonym
from hub.db import db, utcnow
from hub.directory import editing
from hub.directory.organizations import Organization, OrganizationKind, WaitlistBand
from hub.errors import DomainError
from hub.events.feed import subject_history
from hub.followups import records
from hub.mailbox import answers
from hub.opportunities.offers import Opportunity
from hub.portal import chains
from hub.portal.common import (
    caller,
    current_user,
    form_uuid,
    form_version,
    login_required,
    message_of,
    page,
    portal_blueprint,
    status_of,
)
from hub.referrals import checklists, handoffs, lifecycle, redirection
from hub.referrals.legs import (
    CALLER_CANCEL_REASONS,
    OPEN_STATUSES,
    Referral,
    visible_referral,
)
from hub.referrals.lifecycle import Action, Party, Status

blp = portal_blueprint("legs", __name__)

# The deadline that applies in each open status (`hub.api.handoffs` uses the same).
DEADLINE_OF_STATUS = {"sent": "acknowledge_by", "acknowledged": "decide_by",
                      "accepted": "start_by"}
USER_ACTIONS = tuple(a for a in Action if a is not Action.EXPIRE)


def current_deadline(leg: Referral) -> datetime | None:
    column = DEADLINE_OF_STATUS.get(leg.status)
    return getattr(leg, column) if column else None


def organization_names(ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return dict(db.session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(ids))).all())


def leg_rows(legs: list[Referral], now: datetime, reader: Reader | None = None
             ) -> list[dict[str, Any]]:
    """What a list shows of each leg: who, where, status, the deadline now and whether it is
    past; the participant's name only when the reader is entitled to it."""
    names = organization_names({leg.from_organization_id for leg in legs}
                               | {leg.to_organization_id for leg in legs})
    # The opportunity a candidate was referred to, named in the row (offers are public).
    wanted = {leg.opportunity_id for leg in legs if leg.opportunity_id is not None}
    titles = dict(db.session.execute(select(Opportunity.id, Opportunity.title).where(
        Opportunity.id.in_(wanted))).all()) if wanted else {}
    if reader is not None:
        reader.entitle_page(legs)
    rows = []
    for leg in legs:
        due = current_deadline(leg)
        who, reference, hidden_because = None, None, None
        if reader is not None and reader.entitled(leg.participant, leg):
            who = f"{leg.participant.given_name} {leg.participant.family_name}"
        elif reader is not None:
            # A reference to tell the rows apart, and why the name is not shown.
            reference = pseudonym(leg.participant_id, reader.key)
            hidden_because = (_("closed referral: the name is no longer shown")
                              if leg.status not in OPEN_STATUSES
                              else _("the participant's consent does not cover your "
                                     "organization"))
        rows.append({"id": leg.id, "status": leg.status, "pathway": leg.pathway,
                     "priority": leg.priority, "needed_by": leg.needed_by,
                     "cancel_reason": leg.cancel_reason,
                     "created_at": leg.created_at,
                     "updated_at": leg.updated_at, "due": due,
                     "overdue": due is not None and due < now,
                     "from": names.get(leg.from_organization_id, ""),
                     "to": names.get(leg.to_organization_id, ""), "participant": who,
                     "opportunity": titles.get(leg.opportunity_id)
                     if leg.opportunity_id else None,
                     "reference": reference, "hidden_because": hidden_because})
    return rows


def _actor_names(events: list[Any]) -> dict[str, str]:
    """Who did each step: a user's or a directory contact's name and organization (a contact
    answered from the link of a new-leg mail, `hub.mailbox`), else who in general."""
    named = answers.actor_names(db.session, {event.actor for event in events})
    for actor, name in named.items():
        if actor.startswith("contact:"):
            named[actor] = f"{name} {_('(from the link of a mail)')}"
    for event in events:
        if event.actor in named:
            continue
        if event.actor.startswith("client:"):
            named[event.actor] = _("Partner system")
        elif event.actor.startswith("user:"):
            named[event.actor] = _("Portal user")
        else:
            named[event.actor] = _("The hub")
    return named


def leg_page(referral_id: uuid.UUID, status: int = 200, error: str | None = None, *,
             followup_values: Any = None, followup_bad: set[str] | None = None) -> Response:
    """The leg's page; `followup_values` and `followup_bad`: a follow-up form shown again
    with what was typed and the fields to fix."""
    session = db.session
    who = caller()
    leg = visible_referral(session, who, referral_id)
    reader = Reader(session, who, pseudonym_key())
    view = reader.referral(leg, with_chain=True)
    party = leg.party_of(who.organization_id)
    role = current_user().role
    actions: list[str] = []
    may_act = {Party.RECEIVER: RECEIVING_ROLES, Party.SENDER: SENDING_ROLES}
    if party is not None and role in may_act.get(party, ()):
        actions = [a.value for a in lifecycle.allowed_actions(Status(leg.status), party)
                   if a is not Action.EXPIRE]
    events = subject_history(session, leg.subject)
    names = organization_names({leg.from_organization_id, leg.to_organization_id}
                               | {uuid.UUID(c["from_organization_id"]) for c in view["chain"]}
                               | {uuid.UUID(c["to_organization_id"]) for c in view["chain"]})
    actors = _actor_names(events)
    timeline = [{"type": e.type, "time": e.time, "actor": actors[e.actor],
                 "status": (e.data.get("referral") or {}).get("status")} for e in events]
    forward_to = []
    if Action.FORWARD.value in actions:
        forward_to = list(session.execute(
            select(Organization.id, Organization.name)
            .where(Organization.kind != OrganizationKind.COORDINATION.value,
                   Organization.id != who.organization_id)
            .order_by(Organization.name).limit(200)).all())
    now = utcnow()
    due = current_deadline(leg)
    # A leg of someone registered elsewhere is redirected while their consent still covers
    # the user's organization (`hub.referrals.redirection`), from a form of its own (`sending`).
    may_redirect = (role in SENDING_ROLES
                    and redirection.may_redirect(session, leg, who.organization_id))
    onward = may_redirect and redirection.registered_elsewhere(leg, who)
    if onward:
        may_redirect = redirection.still_trusted(session, who, leg)
    checklist = reader.checklist(leg, checklists.items_of(session, leg))
    # Either party of an open leg ticks items; the one who may act on the leg in the portal.
    may_tick = (party is not None and leg.status in OPEN_STATUSES
                and role in may_act.get(party, ()))
    followup = _followups(leg, reader, role, party)
    return page("portal/leg.html", status, leg=view, **followup,
                followup_values=followup_values or {}, followup_bad=followup_bad or set(),
                checklist=checklist, may_tick=may_tick,
                checklist_statuses=[s.value for s in checklists.ItemStatus],
                participant_id=leg.participant_id,
                chain=chains.picture(view["chain"], names, current=str(leg.id)),
                may_redirect=may_redirect, onward=onward,
                names=names, timeline=timeline,
                actions=actions, error=error, due=due, overdue=due is not None and due < now,
                party=party.value if party else None, forward_to=forward_to,
                decline_reasons=list(lifecycle.DeclineReason), outcomes=list(lifecycle.Outcome),
                cancel_reasons=list(CALLER_CANCEL_REASONS),
                ask_capacity=(party is Party.RECEIVER and role in RECEIVING_ROLES
                              and answers.asks_for_capacity(leg)),
                waitlist_bands=list(WaitlistBand), today=now.date().isoformat(),
                created_at=leg.created_at, updated_at=leg.updated_at, needed_by=leg.needed_by,
                opportunity=(session.get(Opportunity, leg.opportunity_id)
                             if leg.opportunity_id else None),
                deadlines={"acknowledge_by": leg.acknowledge_by, "decide_by": leg.decide_by,
                           "start_by": leg.start_by})


def _followups(leg: Referral, reader: Reader, role: str, party: Party | None
               ) -> dict[str, Any]:
    """The leg's follow-up records as the reader may see them, and for its sending
    counsellor the form that records one (`hub.portal.followups`) and, after a
    `needs_support` answer, a new referral for the person prefilled from this leg."""
    session = db.session
    found = [{**reader.followup(r, leg), "recorded_at": r.recorded_at}  # a moment, for `when`
             for r in records.records_of(session, leg.id)]
    may_record = (party is Party.SENDER and role in SENDING_ROLES
                  and leg.status == Status.COMPLETED.value)
    refer_again = None
    if (may_record and leg.participant.organization_id == reader.caller.organization_id
            and any(r["situation"] == records.Situation.NEEDS_SUPPORT for r in found)):
        region = session.scalar(select(Organization.region).where(
            Organization.id == leg.to_organization_id))
        refer_again = url_for("sending.refer", participant_id=leg.participant_id,
                              region=region or "", pathway=leg.pathway, after_followup=leg.id)
    # After the 180-day follow-up the counsellor may enrol the person as a peer (§11).
    offer_peer = None
    if (may_record and leg.participant.organization_id == reader.caller.organization_id
            and any(r["due"] == "followup_180" and r["reached"] for r in found)):
        offer_peer = url_for("peer_pages.enrol", participant_id=leg.participant_id)
    return {"followups": found, "may_record_followup": may_record, "offer_peer": offer_peer,
            "open_followup": records.open_followup(session, leg.id) if may_record else None,
            "situations": list(records.Situation), "refer_again": refer_again}


@blp.get("/legs/<uuid:referral_id>")
@login_required()
def detail(referral_id: uuid.UUID) -> Response:
    return leg_page(referral_id)


@blp.post("/legs/<uuid:referral_id>/<action>")
@login_required(SENDING_ROLES | RECEIVING_ROLES)
def act(referral_id: uuid.UUID, action: str) -> Response:
    """Carry out one lifecycle action; a refusal shows the leg again with the reason."""
    if action not in {a.value for a in USER_ACTIONS}:
        return leg_page(referral_id, 404, _("Unknown action."))
    chosen = Action(action)
    form = request.form
    if chosen is Action.CANCEL and not form.get("confirmed"):
        leg = visible_referral(db.session, caller(), referral_id)
        if (leg.party_of(caller().organization_id) is Party.SENDER
                and Action.CANCEL in lifecycle.allowed_actions(Status(leg.status), Party.SENDER)):
            return _confirm_cancel(referral_id)
    try:
        leg = handoffs.transition(
            db.session, caller(), referral_id, chosen, expected_version=form_version(),
            note=form.get("note") or None, reason=form.get("reason") or None,
            outcome=form.get("outcome") or None,
            to_organization_id=form_uuid("to_organization_id"))
    except DomainError as error:
        db.session.rollback()
        return leg_page(referral_id, status_of(error), message_of(error))
    flash(_done(chosen), "success")
    return redirect(url_for("legs.detail", referral_id=leg.id))


@blp.post("/legs/<uuid:referral_id>/capacity")
@login_required(RECEIVING_ROLES)
def capacity(referral_id: uuid.UUID) -> Response:
    """"We are full until…", asked on a leg the user's organization declined for lack of room
    (design §14): its capacity and its services', dated now."""
    session = db.session
    who = caller()
    leg = visible_referral(session, who, referral_id)
    if leg.to_organization_id != who.organization_id or not answers.asks_for_capacity(leg):
        return leg_page(referral_id, 409, _("Your organization may not do this."))
    form = request.form
    try:
        until = date.fromisoformat(form["until"]) if form.get("until") else None
        organization = session.get(Organization, who.organization_id)
        assert organization is not None
        editing.declare_capacity(session, organization, capacity=form.get("capacity", ""),
                                 until=until, waitlist_band=form.get("waitlist_band") or None)
    except ValueError:
        return leg_page(referral_id, 422, _("Choose a date from today on, or leave it empty."))
    except DomainError as error:
        session.rollback()
        return leg_page(referral_id, status_of(error), message_of(error))
    flash(_("Thank you: counsellors now see your capacity."), "success")
    return redirect(url_for("legs.detail", referral_id=leg.id))


@blp.post("/legs/<uuid:referral_id>/checklist/<code>")
@login_required(SENDING_ROLES | RECEIVING_ROLES)
def tick(referral_id: uuid.UUID, code: str) -> Response:
    """Change one item of the leg's checklist; a refusal shows the leg again with the reason."""
    form = request.form
    try:
        leg = visible_referral(db.session, caller(), referral_id)
        checklists.update_item(db.session, caller(), leg, code,
                               status=form.get("status", ""), owner=form.get("owner") or None,
                               note=form.get("note") or None)
    except DomainError as error:
        db.session.rollback()
        return leg_page(referral_id, status_of(error), message_of(error))
    flash(_("Checklist updated."), "success")
    return redirect(url_for("legs.detail", referral_id=referral_id) + "#checklist")


@blp.get("/legs/<uuid:referral_id>/checklist/print")
@login_required()
def checklist_print(referral_id: uuid.UUID) -> Response:
    """The checklist on one printable page, to hand to the participant: what is ready, what
    is left and who does it."""
    session = db.session
    who = caller()
    leg = visible_referral(session, who, referral_id)
    reader = Reader(session, who, pseudonym_key())
    view = reader.referral(leg)
    names = organization_names({leg.from_organization_id, leg.to_organization_id})
    return page("portal/checklist_print.html", leg=view, names=names,
                checklist=reader.checklist(leg, checklists.items_of(session, leg)),
                needed_by=leg.needed_by)


def _confirm_cancel(referral_id: uuid.UUID) -> Response:
    """Cancelling closes the leg for both organizations: asked once more, with what happens."""
    who = caller()
    leg = visible_referral(db.session, who, referral_id)
    view = Reader(db.session, who, pseudonym_key()).referral(leg)
    names = organization_names({leg.to_organization_id})
    return page("portal/leg_cancel.html", leg=view, to=names.get(leg.to_organization_id, ""),
                reason=request.form.get("reason", ""), version=request.form.get("version", ""))


def _done(action: Action) -> str:
    """What the user just did, said as a sentence."""
    return {
        Action.ACKNOWLEDGE: _("Receipt of the referral confirmed."),
        Action.ACCEPT: _("Referral accepted."), Action.DECLINE: _("Referral declined."),
        Action.START: _("First contact recorded."), Action.COMPLETE: _("Referral completed."),
        Action.FORWARD: _("Referral forwarded."), Action.CANCEL: _("Referral cancelled."),
    }.get(action, action.value)
