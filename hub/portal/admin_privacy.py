"""The organization's register of confidentiality incidents, for its admins: the list, a form
to record one and to complete or correct it, and the register as CSV (the same as the API's);
and its erasure register (when, which pseudonym, why), also as CSV.  Moments are typed in the
organization's own time zone and stored in UTC."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug import Response
from werkzeug.datastructures import MultiDict

from hub.api.privacy_incidents import IncidentIn, erasures_csv, register_csv
from hub.db import db
from hub.directory.organizations import Organization
from hub.errors import Invalid
from hub.portal import forms
from hub.portal.admin import ADMIN_ROLES, audit, managed_organization
from hub.portal.common import caller, login_required, page, portal_blueprint
from hub.privacy import erasure, incidents
from hub.privacy.incidents import MOMENTS, PrivacyIncident

blp = portal_blueprint("admin_privacy", __name__)

INCIDENTS_SHOWN = 500


@blp.app_template_global()
def kept_until(recorded_at: datetime) -> datetime:
    return incidents.kept_until(recorded_at)


def _zone(organization: Organization) -> ZoneInfo:
    return ZoneInfo(organization.time_zone)


def _posted(organization: Organization) -> MultiDict[str, str]:
    """The form with its moments (`datetime-local`: no zone) in the organization's zone."""
    posted = MultiDict(request.form)
    for name in MOMENTS:
        typed = posted.get(name, "").strip()
        if not typed:
            continue
        try:
            moment = datetime.fromisoformat(typed)
        except ValueError:
            continue  # left as typed: the schema says the field is wrong
        if moment.tzinfo is None:
            posted[name] = moment.replace(tzinfo=_zone(organization)).isoformat()
    return posted


def _form_values(organization: Organization, incident: PrivacyIncident) -> dict[str, Any]:
    """An entry as the form shows it: moments in the organization's zone, to the minute."""
    values: dict[str, Any] = {}
    for name in incidents.FIELDS:
        value = getattr(incident, name)
        if name in MOMENTS and value is not None:
            value = value.astimezone(_zone(organization)).strftime("%Y-%m-%dT%H:%M")
        elif name == "serious_injury_risk":
            value = "true" if value else "false"
        values[name] = "" if value is None else value
    return values


def _date_problems(invalid: Invalid) -> str:
    return _("Check the fields marked below: an incident is discovered after it occurs, notices "
             "are sent after the discovery, no moment is in the future, and the information "
             "involved, the circumstances, the discovery and the risk of serious injury are "
             "required.") if invalid.errors else ""


@blp.get("/admin/<uuid:organization_id>/privacy-incidents")
@login_required(ADMIN_ROLES)
def register(organization_id: uuid.UUID) -> Response:
    organization = managed_organization(organization_id)
    entries = incidents.register_of(db.session, organization.id, limit=INCIDENTS_SHOWN)
    return page("portal/admin/privacy_incidents.html", organization=organization,
                incidents=entries)


@blp.get("/admin/<uuid:organization_id>/privacy-incidents.csv")
@login_required(ADMIN_ROLES)
def register_download(organization_id: uuid.UUID) -> Response:
    organization = managed_organization(organization_id)
    return register_csv(incidents.register_of(db.session, organization.id))


@blp.route("/admin/<uuid:organization_id>/privacy-incidents/new", methods=["GET", "POST"])
@login_required(ADMIN_ROLES)
def incident_new(organization_id: uuid.UUID) -> Response:
    organization = managed_organization(organization_id)
    if request.method == "GET":
        return page("portal/admin/privacy_incident.html", organization=organization,
                    incident=None, values={}, bad=set())
    data, bad = forms.load(IncidentIn(), _posted(organization), lists=())
    if data is None:
        return page("portal/admin/privacy_incident.html", 422, organization=organization,
                    incident=None, values=request.form, bad=bad,
                    error=_("Check the fields marked below."))
    try:
        incident = incidents.record_incident(db.session, organization.id, caller().actor,
                                             **data)
    except Invalid as invalid:
        db.session.rollback()
        return page("portal/admin/privacy_incident.html", 422,
                    organization=managed_organization(organization_id), incident=None,
                    values=request.form, bad=set(invalid.errors),
                    error=_date_problems(invalid))
    audit("privacy_incident.recorded", organization, incident.id)
    flash(_("Incident recorded in the register."), "success")
    return redirect(url_for("admin_privacy.register", organization_id=organization.id))


@blp.route("/admin/<uuid:organization_id>/privacy-incidents/<uuid:incident_id>",
           methods=["GET", "POST"])
@login_required(ADMIN_ROLES)
def incident_edit(organization_id: uuid.UUID, incident_id: uuid.UUID) -> Response:
    """Complete or correct an entry; the form shows every field, as it is now."""
    organization = managed_organization(organization_id)
    incident = incidents.own_incident(db.session, organization.id, incident_id)
    if request.method == "GET":
        return page("portal/admin/privacy_incident.html", organization=organization,
                    incident=incident, values=_form_values(organization, incident), bad=set())
    data, bad = forms.load(IncidentIn(), _posted(organization), lists=())
    if data is None:
        return page("portal/admin/privacy_incident.html", 422, organization=organization,
                    incident=incident, values=request.form, bad=bad,
                    error=_("Check the fields marked below."))
    try:
        incidents.correct_incident(db.session, caller().actor, incident, **data)
    except Invalid as invalid:
        db.session.rollback()
        organization = managed_organization(organization_id)
        return page("portal/admin/privacy_incident.html", 422, values=request.form,
                    bad=set(invalid.errors), error=_date_problems(invalid),
                    organization=organization,
                    incident=incidents.own_incident(db.session, organization.id, incident_id))
    audit("privacy_incident.corrected", organization, incident.id)
    flash(_("Register entry updated."), "success")
    return redirect(url_for("admin_privacy.register", organization_id=organization.id))


@blp.get("/admin/<uuid:organization_id>/erasures")
@login_required(ADMIN_ROLES)
def erasures(organization_id: uuid.UUID) -> Response:
    """The erasure register: when, which pseudonym, why; never who."""
    organization = managed_organization(organization_id)
    entries = erasure.register_of(db.session, organization.id, limit=INCIDENTS_SHOWN)
    return page("portal/admin/erasures.html", organization=organization, erasures=entries)


@blp.get("/admin/<uuid:organization_id>/erasures.csv")
@login_required(ADMIN_ROLES)
def erasures_download(organization_id: uuid.UUID) -> Response:
    organization = managed_organization(organization_id)
    return erasures_csv(erasure.register_of(db.session, organization.id))
