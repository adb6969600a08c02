"""The counsellor's peer-matching pages (docs/design.md §11): find a peer for a newcomer and
propose them, follow the organization's matches (answering for its own peers, ending), and
enrol one of the organization's participants as a peer.  The use cases are the API's
(`hub.peers.matching`); what each side sees is `hub.consent.visibility`'s."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug import Response

from hub.accounts.users import SENDING_ROLES
from hub.api.common import pseudonym_key
from hub.api.peers import PeerIn
from hub.consent import consents
from hub.consent.visibility import Reader
from hub.db import db, utcnow
from hub.directory.organizations import QUEBEC_REGIONS
from hub.errors import DomainError
from hub.peers import matching
from hub.peers.profiles import (
    Channel,
    Offer,
    PeerProfile,
    active_consent,
    has_consent,
    profile_of,
)
from hub.portal import forms
from hub.portal.common import caller, login_required, message_of, page, portal_blueprint, status_of
from hub.referrals.lifecycle import Pathway
from hub.referrals.participants import Participant

blp = portal_blueprint("peer_pages", __name__)

NEWCOMERS_SHOWN = 200
PROFILE_LISTS = ("languages", "pathways", "offers", "contact_channels")


def _reader() -> Reader:
    return Reader(db.session, caller(), pseudonym_key())


def _newcomers() -> list[tuple[uuid.UUID, str]]:
    """The organization's participants who agreed to be put in touch with a peer."""
    agreed = active_consent(Participant.id, utcnow()).label("agreed")
    rows = db.session.execute(
        select(Participant, agreed).where(Participant.organization_id == caller().organization_id)
        .order_by(Participant.created_at.desc()).limit(NEWCOMERS_SHOWN))
    return [(participant.id, f"{participant.given_name} {participant.family_name}")
            for participant, consented in rows if consented]


def _search_page(status: int = 200, error: str | None = None,
                 values: Any = None) -> Response:
    filters = {name: request.args.get(name, "") for name in ("region", "language", "pathway")}
    found = matching.find_peers(db.session, caller(), region=filters["region"] or None,
                                language=filters["language"] or None,
                                pathway=filters["pathway"] or None, limit=100)
    counts = matching.active_matches(db.session, [p.id for p in found])
    reader = _reader()
    return page("portal/peers.html", status, error=error, filters=filters,
                peers=[reader.peer_profile(p, counts.get(p.id, 0)) for p in found],
                newcomers=_newcomers(), regions=QUEBEC_REGIONS, pathways=list(Pathway),
                values=values or {})


@blp.get("/peers")
@login_required(SENDING_ROLES)
def search() -> Response:
    """Peers whose consent covers the organization, as pseudonymous profiles."""
    return _search_page()


@blp.post("/peers/<uuid:peer_id>/propose")
@login_required(SENDING_ROLES)
def propose(peer_id: uuid.UUID) -> Response:
    try:
        newcomer = uuid.UUID(request.form.get("participant_id", ""))
    except ValueError:
        return _search_page(422, _("Choose the newcomer to put in touch."), request.form)
    try:
        matching.propose(db.session, caller(), peer_id=peer_id, participant_id=newcomer,
                         note=request.form.get("note") or None,
                         public_url=current_app.config["HUB_SETTINGS"].public_url)
    except DomainError as error:
        db.session.rollback()
        return _search_page(status_of(error), message_of(error), request.form)
    flash(_("Proposal sent: the peer is asked, and has 10 business days to answer."), "success")
    return redirect(url_for("peer_pages.matches"))


def _matches_page(status: int = 200, error: str | None = None) -> Response:
    reader = _reader()
    rows = []
    for match in matching.matches_of(db.session, caller()):
        view = reader.peer_match(match, matching.codes(match))
        view["proposed_moment"] = match.proposed_at
        view["peer_region"] = QUEBEC_REGIONS.get(match.peer.region, match.peer.region)
        view["ours"] = match.organization_id == caller().organization_id
        view["our_peer"] = match.peer_organization_id == caller().organization_id
        if view["ours"]:
            view["newcomer_name"] = (f"{match.participant.given_name} "
                                     f"{match.participant.family_name}")
        rows.append(view)
    return page("portal/peer_matches.html", status, error=error, matches=rows)


@blp.get("/peer-matches")
@login_required(SENDING_ROLES)
def matches() -> Response:
    """The organization's matches: its newcomers' and its peers'."""
    return _matches_page()


@blp.post("/peer-matches/<uuid:match_id>/<action>")
@login_required(SENDING_ROLES)
def act(match_id: uuid.UUID, action: str) -> Response:
    """Accept or decline for one of the organization's peers, or end a match."""
    who = caller()
    try:
        match = matching.visible_match(db.session, who, match_id)
        if action in ("accept", "decline"):
            matching.answer(db.session, match, accept=action == "accept", actor=who.actor,
                            caller=who)
        elif action == "end":
            matching.end(db.session, match, actor=who.actor, caller=who)
        else:
            return _matches_page(404, _("Unknown action."))
    except DomainError as error:
        db.session.rollback()
        return _matches_page(status_of(error), message_of(error))
    flash(_("Done."), "success")
    return redirect(url_for("peer_pages.matches"))


def _enrol_form(participant: Participant, profile: PeerProfile | None, status: int = 200,
                error: str | None = None, values: Any = None, bad: set[str] | None = None
                ) -> Response:
    return page("portal/peer_enrol.html", status, error=error, bad=bad or set(),
                participant=_reader().participant(participant), profile=profile,
                values=values, regions=QUEBEC_REGIONS, pathways=list(Pathway),
                offers=list(Offer), channels=list(Channel),
                consented=has_consent(db.session, participant.id))


@blp.route("/participants/<uuid:participant_id>/peer", methods=["GET", "POST"])
@login_required(SENDING_ROLES)
def enrol(participant_id: uuid.UUID) -> Response:
    """Enrol the organization's participant as a peer (usually after the 180-day follow-up),
    with their `peer_matching` consent; or withdraw them."""
    participant = consents.own_participant(db.session, caller(), participant_id)
    profile = profile_of(db.session, participant.id)
    if request.method == "GET":
        values = {"region": participant.region or "", "languages": [
            participant.preferred_language], "contact_channels": [
            c for c, v in ((Channel.EMAIL.value, participant.email),
                           (Channel.PHONE.value, participant.phone)) if v]}
        return _enrol_form(participant, profile, values=values)
    if request.form.get("withdraw") and profile is not None:
        matching.withdraw_peer(db.session, caller(), profile, actor=caller().actor)
        flash(_("The person no longer appears as a peer; their open matches ended."),
              "success")
        return redirect(url_for("sending.participant_detail", participant_id=participant.id))
    form = request.form.copy()
    form["participant_id"] = str(participant.id)
    languages = forms.lines(request.form.get("languages"))
    if languages:
        form.setlist("languages", languages)
    else:  # setlist with [] leaves a key without value, which MultiDict.to_dict cannot read
        form.poplist("languages")
    data, bad = forms.load(PeerIn(), form, lists=PROFILE_LISTS)
    values = {**form.to_dict(), **{name: form.getlist(name) for name in PROFILE_LISTS}}
    if data is None:
        return _enrol_form(participant, profile, 422, _("Check the fields marked below."),
                           values, bad)
    try:
        matching.enrol(db.session, caller(), **data)
    except DomainError as error:
        db.session.rollback()
        return _enrol_form(participant, profile, status_of(error), message_of(error), values)
    flash(_("Enrolled as a peer: counsellors of the organizations the person agreed to can "
            "now find them, without their name."), "success")
    return redirect(url_for("sending.participant_detail", participant_id=participant.id))
