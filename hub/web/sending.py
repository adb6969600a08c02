"""The sending counsellor's pages: find or register a participant, record their consent,
refer them to an organization of the directory, and follow the outbound legs."""

from __future__ import annotations

import uuid
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug import Response

from hub import consent, participants, referrals
from hub.api.common import pseudonym_key
from hub.api.consents import ConsentIn
from hub.api.participants import ParticipantIn
from hub.api.referrals import ReferralIn
from hub.db import db, utcnow
from hub.directory import QUEBEC_REGIONS, Capacity, Organization, OrganizationKind
from hub.errors import Invalid
from hub.lifecycle import Pathway, Priority, Stage
from hub.participants import Participant, PossibleDuplicate
from hub.referrals import Referral
from hub.users import SENDING_ROLES
from hub.visibility import Reader
from hub.web import forms
from hub.web.legs import leg_rows
from hub.web.portal import caller, login_required, message_of, page, portal_blueprint

blp = portal_blueprint("sending", __name__)

PARTICIPANTS_SHOWN = 200
DIRECTORY_SHOWN = 100


def _reader() -> Reader:
    return Reader(db.session, caller(), pseudonym_key())


def _own_participant(participant_id: uuid.UUID) -> Participant:
    return consent.own_participant(db.session, caller(), participant_id)


@blp.get("/participants")
@login_required(SENDING_ROLES)
def participant_list() -> Response:
    """The organization's participants, newest first, filtered by name or contact.

    Names are encrypted at rest, so the filter runs here on the latest ones, not in SQL."""
    query = request.args.get("q", "").strip().casefold()
    reader = _reader()
    found = []
    for participant in db.session.scalars(
            select(Participant).where(Participant.organization_id == caller().organization_id)
            .order_by(Participant.created_at.desc()).limit(PARTICIPANTS_SHOWN)):
        text = " ".join(filter(None, (participant.given_name, participant.family_name,
                                      participant.email, participant.phone))).casefold()
        if query and query not in text:
            continue
        found.append(reader.participant(participant))
    return page("portal/participants.html", participants=found, q=request.args.get("q", ""))


@blp.route("/participants/new", methods=["GET", "POST"])
@login_required(SENDING_ROLES)
def participant_new() -> Response:
    values = request.form if request.method == "POST" else {}
    if request.method == "GET":
        return page("portal/participant_new.html", values=values, bad=set(),
                    regions=QUEBEC_REGIONS)
    data, bad = forms.load(ParticipantIn(), request.form)
    if data is None:
        return page("portal/participant_new.html", 422, values=values, bad=bad,
                    regions=QUEBEC_REGIONS, error=_("Check the fields marked below."))
    try:
        participant = participants.register_participant(
            db.session, organization_id=caller().organization_id, **data)
    except PossibleDuplicate as duplicate:
        reader = _reader()
        return page("portal/participant_new.html", 409, values=values, bad=set(),
                    regions=QUEBEC_REGIONS, error=message_of(duplicate),
                    duplicates=[reader.participant(p) for p in duplicate.matches])
    flash(_("Participant registered."), "success")
    return redirect(url_for("sending.participant_detail", participant_id=participant.id))


@blp.get("/participants/<uuid:participant_id>")
@login_required(SENDING_ROLES)
def participant_detail(participant_id: uuid.UUID) -> Response:
    participant = _own_participant(participant_id)
    reader = _reader()
    now = utcnow()
    consents = consent.history(db.session, participant.id)
    organizations = _organization_names(
        {o for c in consents for o in c.organization_ids})
    legs = list(db.session.scalars(
        select(Referral).where(Referral.participant_id == participant.id)
        .order_by(Referral.created_at.desc())))
    return page("portal/participant.html", participant=reader.participant(participant),
                consents=[{"consent": c, "status": c.status(now).value,
                           "organizations": [organizations.get(o, str(o))
                                             for o in c.organization_ids]} for c in consents],
                legs=leg_rows(legs, now))


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
               "purposes": list(consent.Purpose), "evidences": list(consent.Evidence)}
    if request.method == "GET":
        return page("portal/consent_new.html", bad=set(), **context)
    data, bad = forms.load(ConsentIn(), request.form)
    if data is None:
        return page("portal/consent_new.html", 422, bad=bad,
                    error=_("Check the fields marked below."), **context)
    try:
        consent.grant(db.session, caller(), participant.id, **data)
    except Invalid as invalid:
        db.session.rollback()
        return page("portal/consent_new.html", 422, bad=set(invalid.errors),
                    error=message_of(invalid), **context)
    flash(_("Consent recorded."), "success")
    return redirect(url_for("sending.participant_detail", participant_id=participant.id))


@blp.route("/participants/<uuid:participant_id>/refer", methods=["GET", "POST"])
@login_required(SENDING_ROLES)
def refer(participant_id: uuid.UUID) -> Response:
    """Choose the receiving organization from the directory, filtered by region, kind and
    capacity; each one shows whether the participant's consent covers it, before sending."""
    participant = _own_participant(participant_id)
    filters = {name: request.values.get(name, "") for name in ("region", "kind", "capacity")}
    directory = _directory(exclude=caller().organization_id, **filters)
    for entry in directory:
        entry["covered"] = consent.covers(db.session, participant, entry["id"],
                                          consent.Purpose.REFERRAL_SHARING)
    context = {"participant": _reader().participant(participant), "directory": directory,
               "filters": filters, "regions": QUEBEC_REGIONS,
               "kinds": [k for k in OrganizationKind if k != OrganizationKind.COORDINATION],
               "capacities": list(Capacity), "pathways": list(Pathway),
               "stages": list(Stage), "priorities": list(Priority),
               "values": request.form if request.method == "POST" else {}}
    if request.method == "GET":
        return page("portal/refer.html", bad=set(), **context)
    form = request.form.copy()
    form.setlist("needs", forms.lines(request.form.get("needs")))
    form["participant_id"] = str(participant.id)
    data, bad = forms.load(ReferralIn(), form)
    if data is None:
        return page("portal/refer.html", 422, bad=bad,
                    error=_("Check the fields marked below."), **context)
    leg = referrals.send_referral(db.session, caller(), **data)
    flash(_("Referral sent."), "success")
    return redirect(url_for("legs.detail", referral_id=leg.id))


@blp.get("/outbound")
@login_required(SENDING_ROLES)
def outbound() -> Response:
    """The organization's outbound legs, open ones first, newest first, overdue marked."""
    now = utcnow()
    closed = request.args.get("closed") == "1"
    legs = list(db.session.scalars(
        select(Referral).where(Referral.from_organization_id == caller().organization_id,
                               Referral.closed_at.is_not(None) if closed
                               else Referral.closed_at.is_(None))
        .order_by(Referral.created_at.desc()).limit(DIRECTORY_SHOWN)))
    reader = _reader()
    return page("portal/outbound.html", legs=leg_rows(legs, now, reader), closed=closed)


def _organization_names(ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return dict(db.session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(ids))).all())


def _directory(*, exclude: uuid.UUID, region: str = "", kind: str = "",
               capacity: str = "") -> list[dict[str, Any]]:
    """Organizations that may receive referrals, by name, with the chosen filters."""
    query = (select(Organization)
             .where(Organization.kind != OrganizationKind.COORDINATION.value,
                    Organization.id != exclude)
             .order_by(Organization.name).limit(DIRECTORY_SHOWN))
    if region:
        query = query.where(Organization.region == region)
    if kind:
        query = query.where(Organization.kind == kind)
    if capacity:
        query = query.where(Organization.capacity == capacity)
    return [{"id": o.id, "name": o.name, "kind": o.kind, "region": o.region,
             "region_name": QUEBEC_REGIONS.get(o.region, o.region), "capacity": o.capacity}
            for o in db.session.scalars(query)]
