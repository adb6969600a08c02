"""The sending counsellor's pages: find or register a participant, record their consent,
refer them to an organization of the directory, follow the outbound legs, and redirect one
(also a leg forwarded for a participant another organization registered)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from flask import Response as FlaskResponse
from flask import flash, redirect, request, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from sqlalchemy import select, tuple_
from sqlalchemy.orm import selectinload
from werkzeug import Response
from werkzeug.datastructures import MultiDict

from hub.accounts.form_tokens import FormExpired
from hub.accounts.users import SENDING_ROLES
from hub.api.common import aware_datetime, pseudonym_key
from hub.api.consents import ConsentIn
from hub.api.participants import ParticipantIn
from hub.api.referrals import ReferralIn
from hub.consent import consents
from hub.consent.visibility import Reader
from hub.db import db, utcnow
from hub.directory import search
from hub.directory.organizations import (
    QUEBEC_REGIONS,
    Capacity,
    Organization,
    OrganizationKind,
    capacity_is_stale,
)
from hub.errors import DomainError, Invalid, NotFound, VersionMismatch
from hub.followups import records
from hub.opportunities.offers import Opportunity, OpportunityClosed
from hub.portal import chains, forms, paging
from hub.portal import opportunities as opportunity_pages
from hub.portal.common import (
    caller,
    login_required,
    message_of,
    page,
    portal_blueprint,
    status_of,
)
from hub.portal.i18n import format_day
from hub.portal.labels import language_name
from hub.portal.legs import leg_rows
from hub.privacy import erasure, person_copy
from hub.referrals import correction, handoffs, households, participants, redirection
from hub.referrals.legs import OPEN_STATUSES, Referral
from hub.referrals.lifecycle import Pathway, Priority, Stage
from hub.referrals.participants import Participant, ParticipantErased, PossibleDuplicate

blp = portal_blueprint("sending", __name__)

PARTICIPANTS_SHOWN = 50
DIRECTORY_SHOWN = 100


def _reader() -> Reader:
    return Reader(db.session, caller(), pseudonym_key())


def _own_participant(participant_id: uuid.UUID) -> Participant:
    return consents.own_participant(db.session, caller(), participant_id)


@blp.get("/participants")
@login_required(SENDING_ROLES)
def participant_list() -> Response:
    """The organization's participants, newest first, all of them or those a search finds
    (by name without regard to accents, case, hyphens or word order; by email; by phone
    digits: `hub.referrals.participant_search`), a page at a time."""
    query = request.args.get("q", "").strip()[:200]
    after = paging.position(aware_datetime, uuid.UUID)
    found = participants.search(db.session, caller().organization_id, query,
                                limit=PARTICIPANTS_SHOWN + 1,
                                after=(after[0], after[1]) if after else None)
    shown, next_page = paging.cut(found, lambda p: (p.created_at, p.id), PARTICIPANTS_SHOWN)
    reader = _reader()
    return page("portal/participants.html", participants=[reader.participant(p) for p in shown],
                q=request.args.get("q", ""), next_page=next_page,
                first_page=paging.first_page())


def _participant_form(template: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("bad", set())
    if template == "portal/participant_new.html":
        context.setdefault("form_token", forms.token())
    return page(template, status, regions=QUEBEC_REGIONS, **context)


def _expired(template: str, **context: Any) -> Response:
    """A form sent with a token the hub no longer knows: shown again as typed, with a new token
    (a 200, so that the token is saved), to check and send again."""
    db.session.rollback()
    return page(template, form_token=forms.token(fresh=True),
                error=_("This form had expired. Check what it shows and send it again."),
                **context)


def _sent_already_or_expired(template: str, **context: Any) -> Response | None:
    """What a posted form answers before it creates anything: the page of what the same form
    created already (a second click, Back then send again), or the form again when its token
    has expired; None to go ahead."""
    try:
        return forms.claim()
    except FormExpired:
        return _expired(template, **context)


@blp.route("/participants/new", methods=["GET", "POST"])
@login_required(SENDING_ROLES)
def participant_new() -> Response:
    """Register a participant. The same person already registered (same names and a contact
    in common) is refused unless the counsellor says it is another person; the same names
    alone are shown as possible duplicates to confirm."""
    template = "portal/participant_new.html"
    if request.method == "GET":
        return _participant_form(template, values={}, form_token=forms.token())
    values = request.form
    answer = _sent_already_or_expired(template, values=values, regions=QUEBEC_REGIONS,
                                      bad=set())
    if answer is not None:
        return answer
    data, bad = forms.load(ParticipantIn(), request.form)
    if data is None:
        return _participant_form(template, 422, values=values, bad=bad,
                                 error=_("Check the fields marked below."))
    reader = _reader()
    confirmed = data.get("allow_duplicate", False)
    if not confirmed:
        candidate = Participant(organization_id=caller().organization_id,
                                **{k: v for k, v in data.items() if k != "allow_duplicate"})
        candidate.set_blind_indexes()
        same_names = participants.namesakes(db.session, candidate)
        if same_names:
            sure = [p for p in same_names if participants.same_person(candidate, p)]
            message = (message_of(participants.PossibleDuplicate(sure)) if sure else
                       _("Your organization already registered a person with the same names. "
                         "Is it the same person?"))
            return _participant_form(template, 409, values=values, error=message,
                                     duplicates=[reader.participant(p) for p in same_names])
    participant = participants.register_participant(
        db.session, organization_id=caller().organization_id, **data)
    flash(_("Participant registered."), "success")
    return _created(url_for("sending.participant_detail", participant_id=participant.id))


def _created(path: str) -> Response:
    forms.created(path)
    return redirect(path)


OPTIONAL_FIELDS = ("email", "phone", "birth_year", "region")


@blp.route("/participants/<uuid:participant_id>/edit", methods=["GET", "POST"])
@login_required(SENDING_ROLES)
def participant_edit(participant_id: uuid.UUID) -> Response:
    """Correct a participant the organization registered (`hub.referrals.correction`): the
    organizations that received them are told to read them again. The form carries the
    version it was read at: a change made meanwhile is shown, not overwritten."""
    participant = _own_participant(participant_id)
    template = "portal/participant_edit.html"
    view = _reader().participant(participant)
    if request.method == "GET":
        values = {name: view.get(name) or "" for name in
                  ("given_name", "family_name", "preferred_language", *OPTIONAL_FIELDS)}
        return _participant_form(template, participant=view,
                                 values={**values, "version": participant.version})
    values = request.form
    data, bad = forms.load(ParticipantIn(), request.form)
    if data is None:
        return _participant_form(template, 422, participant=view, values=values, bad=bad,
                                 error=_("Check the fields marked below."))
    allow_duplicate = data.pop("allow_duplicate", False)
    for name in OPTIONAL_FIELDS:  # an emptied field clears the value
        data.setdefault(name, None)
    try:
        version = int(request.form.get("version", ""))
    except ValueError:
        version = None
    try:
        correction.correct_participant(db.session, caller(), participant.id, data,
                                       expected_version=version,
                                       allow_duplicate=allow_duplicate)
    except VersionMismatch:
        db.session.rollback()
        participant = _own_participant(participant_id)
        view = _reader().participant(participant)
        return _participant_form(
            template, 409, participant=view,
            values={**values.to_dict(), "version": participant.version},
            error=_("Someone corrected this participant meanwhile: their record is shown "
                    "above the form. Check your changes and save again."), current=view)
    except PossibleDuplicate as duplicate:
        db.session.rollback()
        view = _reader().participant(_own_participant(participant_id))
        return _participant_form(template, 409, participant=view, values=values,
                                 error=message_of(duplicate),
                                 duplicates=[_reader().participant(p)
                                             for p in duplicate.matches])
    flash(_("Participant corrected."), "success")
    return redirect(url_for("sending.participant_detail", participant_id=participant.id))


@blp.get("/participants/<uuid:participant_id>")
@login_required(SENDING_ROLES)
def participant_detail(participant_id: uuid.UUID) -> Response:
    participant = _own_participant(participant_id)
    if participant.erased_at is not None:
        raise ParticipantErased(participant.id, participant.erased_at)
    reader = _reader()
    now = utcnow()
    history = consents.history(db.session, participant.id)
    organizations = _organization_names(
        {o for c in history for o in c.organization_ids})
    legs = list(db.session.scalars(
        select(Referral).where(Referral.participant_id == participant.id)
        .order_by(Referral.created_at.desc())))
    names = _organization_names({leg.from_organization_id for leg in legs}
                                | {leg.to_organization_id for leg in legs})
    household_id = households.household_of(db.session, participant.id)
    members = [] if household_id is None else [
        reader.participant(p) for p in db.session.scalars(select(Participant).where(
            Participant.id.in_(households.members_of(db.session, household_id)),
            Participant.id != participant.id))]
    return page("portal/participant.html", participant=reader.participant(participant),
                regions=QUEBEC_REGIONS, household=members, in_household=household_id is not None,
                chains=chains.picture(chains.steps_of(legs), names),
                consents=[{"consent": c, "status": c.status(now).value,
                           "organizations": [organizations.get(o, str(o))
                                             for o in c.organization_ids]} for c in history],
                legs=leg_rows(legs, now, reader))


@blp.route("/participants/<uuid:participant_id>/household", methods=["GET", "POST"])
@login_required(SENDING_ROLES)
def household(participant_id: uuid.UUID) -> Response:
    """Link the participant with the people of the organization who move with them (spouse,
    family): their legs are then prepared together (docs/design.md §12). When the participant
    is in a household already, the people chosen join it."""
    participant = _own_participant(participant_id)
    reader = _reader()
    household_id = households.household_of(db.session, participant.id)
    in_it = set() if household_id is None else set(households.members_of(db.session,
                                                                         household_id))
    candidates = [reader.participant(p) for p in db.session.scalars(
        select(Participant).where(Participant.organization_id == caller().organization_id,
                                  Participant.id != participant.id,
                                  Participant.id.not_in(in_it))
        .order_by(Participant.created_at.desc()).limit(PARTICIPANTS_SHOWN))]
    members = [reader.participant(p) for p in db.session.scalars(
        select(Participant).where(Participant.id.in_(in_it - {participant.id})))]
    chosen = request.form.getlist("participant_ids")
    context: dict[str, Any] = {"participant": reader.participant(participant),
                               "candidates": candidates, "chosen": set(chosen),
                               "members": members}
    if request.method == "GET":
        return page("portal/household.html", **context)
    if not chosen:
        return page("portal/household.html", 422, error=_("Choose at least one person who "
                                                          "moves with them."), **context)
    try:
        ids = [uuid.UUID(value) for value in chosen]
        if household_id is None:
            households.create_household(db.session, caller(), [participant.id, *ids])
        else:
            households.add_members(db.session, caller(), household_id, ids)
    except ValueError:
        return page("portal/household.html", 422, error=_("Check the fields marked below."),
                    **context)
    except DomainError as error:
        db.session.rollback()
        return page("portal/household.html", status_of(error), error=message_of(error),
                    **context)
    flash(_("Household recorded."), "success")
    return redirect(url_for("sending.participant_detail", participant_id=participant.id))


@blp.post("/participants/<uuid:participant_id>/household/remove")
@login_required(SENDING_ROLES)
def household_remove(participant_id: uuid.UUID) -> Response:
    """Take a member (the participant or another) out of the participant's household; two
    people left and one goes, the household dissolves (`households.remove_member`)."""
    participant = _own_participant(participant_id)
    household_id = households.household_of(db.session, participant.id)
    try:
        member = uuid.UUID(request.form.get("member_id", ""))
    except ValueError:
        member = None
    if household_id is None or member is None:
        raise NotFound("household member", request.form.get("member_id", "")[:40])
    left = households.remove_member(db.session, caller(), household_id, member)
    flash(_("Removed from the household.") if left is not None
          else _("Removed from the household. Only one person was left in it, so it no longer "
                 "exists."), "success")
    return redirect(url_for("sending.participant_detail", participant_id=participant.id))


@blp.route("/participants/<uuid:participant_id>/erase", methods=["GET", "POST"])
@login_required(SENDING_ROLES)
def participant_erase(participant_id: uuid.UUID) -> Response:
    """Erase at the person's request, after a page saying what it does: it cannot be undone."""
    participant = _own_participant(participant_id)
    if participant.erased_at is not None:
        raise ParticipantErased(participant.id, participant.erased_at)
    if request.method == "GET":
        return page("portal/participant_erase.html",
                    participant=_reader().participant(participant))
    erasure.erase(db.session, participant, reason=erasure.Reason.ON_REQUEST,
                  actor=caller().actor, caller=caller(), key=pseudonym_key())
    flash(_("The participant's personal data is erased. Their referrals stay, without "
            "anything that says who they were."), "success")
    return redirect(url_for("sending.participant_list"))


@blp.get("/participants/<uuid:participant_id>/copy")
@login_required(SENDING_ROLES)
def participant_copy(participant_id: uuid.UUID) -> Response:
    """The person's copy (the API's), downloaded to hand over; the read is logged."""
    document = person_copy.person_copy(db.session, caller(), participant_id, pseudonym_key())
    response = FlaskResponse(json.dumps(document, ensure_ascii=False, indent=2),
                             mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="participant-{participant_id}.json"')
    return response


def _privacy_officer() -> dict[str, Any]:
    organization = db.session.get(Organization, caller().organization_id)
    return {"officer_name": organization.privacy_officer_name if organization else None,
            "officer_email": organization.privacy_officer_email if organization else None,
            "organization_name": organization.name if organization else ""}


@blp.get("/participants/<uuid:participant_id>/consents/form")
@login_required(SENDING_ROLES)
def consent_form(participant_id: uuid.UUID) -> Response:
    """The consent form to print and sign: each purpose in plain words, one box each, and who
    answers questions about the person's data."""
    participant = _own_participant(participant_id)
    return page("portal/consent_form.html", participant=_reader().participant(participant),
                purposes=list(consents.Purpose), **_privacy_officer())


@blp.route("/participants/<uuid:participant_id>/consents/new", methods=["GET", "POST"])
@login_required(SENDING_ROLES)
def consent_new(participant_id: uuid.UUID) -> Response:
    participant = _own_participant(participant_id)
    directory = _directory(exclude=caller().organization_id)
    values: Any = request.form if request.method == "POST" else {
        "organization_ids": request.args.getlist("organization_ids")}
    context = {"participant": _reader().participant(participant), "directory": directory,
               "values": values, "chosen": set(request.form.getlist("organization_ids")
                                               if request.method == "POST"
                                               else request.args.getlist("organization_ids")),
               "purposes": list(consents.Purpose), "evidences": list(consents.Evidence),
               **_privacy_officer()}
    if request.method == "GET":
        return page("portal/consent_new.html", bad=set(), form_token=forms.token(), **context)
    answer = _sent_already_or_expired("portal/consent_new.html", bad=set(), **context)
    if answer is not None:
        return answer
    context["form_token"] = forms.token()
    data, bad = forms.load(ConsentIn(), request.form)
    if data is None:
        return page("portal/consent_new.html", 422, bad=bad,
                    error=_("Check the fields marked below."), **context)
    try:
        consents.grant(db.session, caller(), participant.id, **data)
    except Invalid as invalid:
        db.session.rollback()
        return page("portal/consent_new.html", 422, bad=set(invalid.errors),
                    error=message_of(invalid), **context)
    flash(_("Consent recorded."), "success")
    return _created(url_for("sending.participant_detail", participant_id=participant.id))


@blp.route("/participants/<uuid:participant_id>/refer", methods=["GET", "POST"])
@login_required(SENDING_ROLES)
def refer(participant_id: uuid.UUID) -> Response:
    """Choose the receiving organization from the directory, filtered by region, kind,
    capacity and the pathway its services serve; each one shows whether the participant's
    consent covers it, before sending.

    With `redirect_from` (a leg of this participant that was declined, expired or is still
    waiting), the form comes prefilled from that leg and filtered to partners of the same
    region and pathway with room; sending redirects (`hub.referrals.redirection`).  With
    `after_followup` (a leg whose follow-up found the person needing support), the form
    comes prefilled with its pathway and a reason that says so."""
    participant = _own_participant(participant_id)
    previous = _leg_to_redirect(participant, request.args.get("redirect_from"))
    followed = _followed_up(participant, request.args.get("after_followup"))
    previous_view = _reader().referral(previous) if previous is not None else None
    # For an opportunity (`?opportunity_id=`, from its page): the leg goes to its publisher.
    # A posted form names it in its own field only, so that the form shown again without it
    # (the opportunity closed while the counsellor typed) sends the referral without it.
    opportunity, closed = None, None
    if previous is None:
        try:
            opportunity = opportunity_pages.for_referral(
                request.form.get("opportunity_id") if request.method == "POST"
                else request.args.get("opportunity_id"))
        except OpportunityClosed as refused:
            if request.method != "POST":
                raise  # the page that says so: nothing was typed yet
            closed = refused
    # "Filter" posts the whole form, so what was typed stays; a GET filters by its query.
    filtering = request.method == "POST" and "filter" in request.form
    if filtering:  # named apart from the referral's own fields (the pathway)
        filters = {name: request.form.get(f"f_{name}", "") for name in FILTERS}
    else:
        filters = {name: request.args.get(name, "") for name in FILTERS}
    if previous is not None and not filtering and not any(name in request.args
                                                          for name in FILTERS):
        filters = {"region": _region_of(previous.to_organization_id), "kind": "",
                   "capacity": Capacity.OPEN.value, "pathway": previous.pathway}
    directory = _directory(exclude=caller().organization_id, **filters,
                           only=str(opportunity.organization_id) if opportunity else "")
    if previous is not None:
        directory = [e for e in directory if e["id"] != previous.to_organization_id]
    for entry in directory:
        entry["covered"] = consents.covers(db.session, participant, entry["id"],
                                           consents.Purpose.REFERRAL_SHARING)
    context: dict[str, Any] = {
        "participant": _reader().participant(participant), "directory": directory,
        "filters": filters, "regions": QUEBEC_REGIONS,
        "kinds": [k for k in OrganizationKind if k != OrganizationKind.COORDINATION],
        "capacities": list(Capacity), "pathways": list(Pathway),
        "stages": list(Stage), "priorities": list(Priority),
        "previous": previous_view,
        "household_size": len(households.members_of(db.session, household_id))
        if (household_id := households.household_of(db.session, participant.id)) else 0,
        "previous_to": previous and _organization_names(
            {previous.to_organization_id}).get(previous.to_organization_id),
        "opportunity": opportunity_pages.summary(opportunity) if opportunity else None,
        "values": request.form if request.method == "POST"
        else _prefilled(previous_view, filters, opportunity, followed)}
    if request.method == "GET" or filtering:
        return page("portal/refer.html", bad=set(), form_token=forms.token(), **context)
    if closed is not None:  # the form again as typed, to send without the opportunity
        return page("portal/refer.html", status_of(closed), bad=set(),
                    form_token=forms.token(),
                    error=message_of(closed), **context)
    answer = _sent_already_or_expired("portal/refer.html", bad=set(), **context)
    if answer is not None:
        return answer
    context["form_token"] = forms.token()
    form = request.form.copy()
    form.setlist("needs", forms.lines(request.form.get("needs")))
    form["participant_id"] = str(participant.id)
    data, bad = forms.load(ReferralIn(), form)
    if data is None:
        return page("portal/refer.html", 422, bad=bad,
                    error=_("Check the fields marked below."), **context)
    if previous is None and not request.form.get("confirm_open_leg"):
        already = _open_legs_to(participant, data["to_organization_id"])
        if already:
            db.session.rollback()  # the claim too: the confirmed form is sent with its token
            return page("portal/refer.html", 409, bad=set(), open_legs=already,
                        error=_("This participant already has an open referral to this "
                                "organization. Send another one only if it is for something "
                                "else."), **context)
    try:
        if previous is not None:
            data.pop("participant_id")
            data.pop("forwarded_from", None)
            data.pop("opportunity_id", None)  # a redirect is not a candidacy (no such field)
            leg = redirection.redirect_referral(db.session, caller(), previous.id, **data)
            flash(_("Referral redirected."), "success")
        elif request.form.get("whole_household") and context["household_size"]:
            data.pop("forwarded_from", None)
            sent, not_covered = handoffs.send_for_household(db.session, caller(), **data)
            if not sent:
                raise not_covered[0]
            leg = sent[0]
            flash(_("Referral sent for %(num)d members of the household.", num=len(sent)),
                  "success")
            if not_covered:
                flash(_("Not sent for %(num)d members: their consent does not cover this "
                        "organization. Record it, then refer them.", num=len(not_covered)),
                      "warning")
        else:
            leg = handoffs.send_referral(db.session, caller(), **data)
            flash(_("Referral sent."), "success")
    except DomainError as refused:  # the form again, as typed, with what to fix
        db.session.rollback()
        field = ({"to_organization_id"} if isinstance(refused, consents.ConsentRequired)
                 else set(refused.errors) if isinstance(refused, Invalid) else set())
        return page("portal/refer.html", status_of(refused), bad=field,
                    error=message_of(refused), **context)
    return _created(url_for("legs.detail", referral_id=leg.id))


def _open_legs_to(participant: Participant, organization_id: uuid.UUID) -> list[Referral]:
    return list(db.session.scalars(select(Referral).where(
        Referral.participant_id == participant.id,
        Referral.to_organization_id == organization_id,
        Referral.status.in_(OPEN_STATUSES)).order_by(Referral.created_at)))


FILTERS = ("region", "kind", "capacity", "pathway")


@blp.route("/legs/<uuid:referral_id>/redirect", methods=["GET", "POST"])
@login_required(SENDING_ROLES)
def redirect_onward(referral_id: uuid.UUID) -> Response:
    """Redirect a leg the organization sent of a participant another organization registered
    (it received the person and forwarded them): `hub.referrals.redirection` says when.

    The form shows only what the organization may see: no name, no reason or needs (they go
    with the new leg unchanged, to a receiver the consent covers), and no mark of which
    organizations the consent covers, which is the person's to tell: the refusal names only
    the organization chosen, as the API's answer to a forward does."""
    who = caller()
    previous = redirection.leg_to_redirect(db.session, who, referral_id)
    if not redirection.registered_elsewhere(previous, who):
        return redirect(url_for("sending.refer", participant_id=previous.participant_id,
                                redirect_from=previous.id))
    if not redirection.still_trusted(db.session, who, previous):
        return page("portal/message.html", 409, title=_("Redirect the referral"),
                    message=_no_longer_trusted())
    previous_view = _reader().referral(previous)
    filtering = request.method == "POST" and "filter" in request.form
    if filtering:
        filters = {name: request.form.get(f"f_{name}", "") for name in FILTERS}
    else:
        filters = {name: request.args.get(name, "") for name in FILTERS}
    if not filtering and not any(name in request.args for name in FILTERS):
        filters = {"region": _region_of(previous.to_organization_id), "kind": "",
                   "capacity": Capacity.OPEN.value, "pathway": previous.pathway}
    directory = [e for e in _directory(exclude=who.organization_id, **filters)
                 if e["id"] != previous.to_organization_id]
    context = {"participant": previous_view["participant"], "directory": directory,
               "filters": filters, "regions": QUEBEC_REGIONS,
               "kinds": [k for k in OrganizationKind if k != OrganizationKind.COORDINATION],
               "capacities": list(Capacity), "pathways": list(Pathway),
               "stages": list(Stage), "priorities": list(Priority), "onward": True,
               "previous": previous_view,
               "previous_to": _organization_names({previous.to_organization_id}).get(
                   previous.to_organization_id),
               "values": request.form if request.method == "POST" else {
                   "pathway": previous.pathway, "priority": previous.priority,
                   "stage": previous.stage or ""}}
    if request.method == "GET" or filtering:
        return page("portal/refer.html", bad=set(), form_token=forms.token(), **context)
    answer = _sent_already_or_expired("portal/refer.html", bad=set(), **context)
    if answer is not None:
        return answer
    context["form_token"] = forms.token()
    form = {name: request.form.get(name, "") for name in
            ("to_organization_id", "pathway", "priority", "stage")}
    data, bad = forms.load(ReferralIn(), MultiDict(
        {**form, "participant_id": str(previous.participant_id)}))
    if data is None:
        return page("portal/refer.html", 422, bad=bad,
                    error=_("Check the fields marked below."), **context)
    try:
        leg = redirection.redirect_referral(
            db.session, who, previous.id, to_organization_id=data["to_organization_id"],
            pathway=data["pathway"], priority=data.get("priority", "routine"),
            stage=data.get("stage"))
    except consents.ConsentRequired as refused:
        db.session.rollback()
        message = (_no_longer_trusted() if refused.organization_id == who.organization_id
                   else _("The participant's consent does not cover this organization. Only "
                          "the organization that registered the participant records their "
                          "consent: choose another organization, or ask it."))
        return page("portal/refer.html", 409, bad={"to_organization_id"}, error=message,
                    **context)
    flash(_("Referral redirected."), "success")
    return _created(url_for("legs.detail", referral_id=leg.id))


def _no_longer_trusted() -> str:
    return _("The participant's consent no longer covers your organization: you may not "
             "redirect them. The organization that registered them may refer them again.")


def _leg_to_redirect(participant: Participant, raw: str | None) -> Referral | None:
    """The participant's leg named by `redirect_from`, if the user's organization may
    redirect it now (else the page refuses, in words, what the use case would refuse)."""
    if not raw:
        return None
    try:
        leg_id = uuid.UUID(raw)
    except ValueError:
        raise NotFound("referral", raw) from None
    leg = redirection.leg_to_redirect(db.session, caller(), leg_id)
    if leg.participant_id != participant.id:
        raise NotFound("referral", leg_id)
    return leg


def _region_of(organization_id: uuid.UUID) -> str:
    organization = db.session.get(Organization, organization_id)
    return organization.region if organization else ""


def _followed_up(participant: Participant, raw: str | None
                 ) -> tuple[Referral, datetime] | None:
    """The participant's leg named by `after_followup`, sent by the user's organization, and
    when a follow-up last found the person needing support."""
    if not raw:
        return None
    try:
        leg = db.session.get(Referral, uuid.UUID(raw))
    except ValueError:
        raise NotFound("referral", raw) from None
    if (leg is None or leg.participant_id != participant.id
            or leg.from_organization_id != caller().organization_id):
        raise NotFound("referral", raw)
    found = [record.recorded_at for record in records.records_of(db.session, leg.id)
             if record.situation == records.Situation.NEEDS_SUPPORT]
    return (leg, max(found)) if found else None


def _prefilled(previous: dict[str, Any] | None, filters: dict[str, str],
               opportunity: Opportunity | None = None,
               followed: tuple[Referral, datetime] | None = None) -> dict[str, str]:
    """A redirect starts from the previous leg's answers (as this reader may see them); a
    referral for an opportunity goes to its publisher, with its first pathway and its first
    day as the day the person is needed there; a referral after a follow-up takes that leg's
    pathway and says why (the follow-up's note stays with the organization); a pathway filter
    sets the pathway."""
    if opportunity is not None:
        return {"to_organization_id": str(opportunity.organization_id),
                "pathway": opportunity.pathways[0] if opportunity.pathways else "",
                "needed_by": opportunity.starts_on.isoformat() if opportunity.starts_on
                else "", "opportunity_id": str(opportunity.id)}
    if followed is not None:
        leg, recorded_at = followed
        return {"pathway": leg.pathway, "reason_for_referral": _(
            "After the follow-up of %(date)s: the person still needs support.",
            date=format_day(recorded_at, "long"))}
    if previous is None:
        return {"pathway": filters.get("pathway", "")}
    return {"pathway": previous["pathway"], "priority": previous["priority"],
            "stage": previous.get("stage") or "",
            "needed_by": previous.get("needed_by") or "",
            "reason_for_referral": previous.get("reason_for_referral") or "",
            "needs": "\n".join(previous.get("needs") or [])}


@blp.get("/outbound")
@login_required(SENDING_ROLES)
def outbound() -> Response:
    """The organization's outbound legs, open ones or closed ones, newest first, overdue
    marked; a page at a time in keyset order (`after`: the previous page's last row)."""
    now = utcnow()
    closed = request.args.get("closed") == "1"
    query = select(Referral).where(
        Referral.from_organization_id == caller().organization_id,
        Referral.closed_at.is_not(None) if closed else Referral.closed_at.is_(None))
    after = paging.position(aware_datetime, uuid.UUID)
    if after:
        query = query.where(tuple_(Referral.created_at, Referral.id) < tuple_(*after))
    legs = list(db.session.scalars(
        query.order_by(Referral.created_at.desc(), Referral.id.desc())
        .limit(paging.PAGE_SIZE + 1)))
    legs, next_page = paging.cut(legs, lambda leg: (leg.created_at, leg.id))
    reader = _reader()
    return page("portal/outbound.html", legs=leg_rows(legs, now, reader), closed=closed,
                next_page=next_page, first_page=paging.first_page())


def _organization_names(ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return dict(db.session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(ids))).all())


def _directory(*, exclude: uuid.UUID, region: str = "", kind: str = "",
               capacity: str = "", pathway: str = "", only: str = ""
               ) -> list[dict[str, Any]]:
    """Organizations that may receive referrals, by name, with the chosen filters (region and
    pathway served as the directory's search reads them: `hub.directory.search`); `only`: that
    one organization (an opportunity's publisher), whatever the filters."""
    query = (select(Organization)
             .where(Organization.kind != OrganizationKind.COORDINATION.value,
                    Organization.id != exclude)
             .order_by(Organization.name).limit(DIRECTORY_SHOWN))
    if only:
        query = query.where(Organization.id == uuid.UUID(only))
        region = kind = capacity = pathway = ""
    if region:
        query = query.where(search.in_region(region))
    if kind:
        query = query.where(Organization.kind == kind)
    if capacity:
        query = query.where(Organization.capacity == capacity)
    if pathway:
        query = query.where(search.serving(pathway))
    now = utcnow()
    return [{"id": o.id, "name": o.name, "kind": o.kind, "region": o.region,
             "region_name": QUEBEC_REGIONS.get(o.region, o.region), "capacity": o.capacity,
             "services": service_capacities(o, pathway, now),
             # Who each service takes (the directory's eligibility notes): the counsellor
             # sees whether the person fits before sending, not after a decline.
             "eligibility": [{"name": s.name, "notes": s.eligibility_notes}
                             for s in o.services if s.eligibility_notes
                             and (not pathway or pathway in s.pathways)],
             # The languages its services are offered in, to choose where the person is
             # understood.
             "languages": [language_name(code) for code in sorted(
                 {code for service in o.services for code in (service.languages or [])})]}
            for o in db.session.scalars(query.options(selectinload(Organization.services)))]


def service_capacities(organization: Organization, pathway: str, now: datetime
                        ) -> list[dict[str, Any]]:
    """Each service's capacity (of the chosen pathway's services, when one is chosen), with
    how old it is and whether it is too old to trust (design §14)."""
    return [{"name": service.name, "capacity": service.capacity,
             "waitlist_band": service.waitlist_band,
             "age": (format_timedelta(service.capacity_updated_at - now, add_direction=True)
                     if service.capacity_updated_at else None),
             "stale": capacity_is_stale(service.capacity_updated_at, now)}
            for service in organization.services
            if service.capacity is not None and (not pathway or pathway in service.pathways)]
