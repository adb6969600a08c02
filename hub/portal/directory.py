"""The directory as every portal user sees it: a text search, and a page per entry (services
with their eligibility and languages, places, contacts, capacity and how old the entry is),
with what the user's organization wrote about its collaboration with that partner (its
relationship note, kept with its history) and a way to report the entry as out of date
(docs/design.md §13).

The note and the report go through the same use cases and limits as the API's
(`hub.directory.relationships`, `hub.directory.editing`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import flash, redirect, request, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from sqlalchemy.orm import selectinload
from werkzeug import Response

from hub.db import db, utcnow
from hub.directory import editing, relationships
from hub.directory.organizations import QUEBEC_REGIONS, Organization, OrganizationKind
from hub.directory.outdated import NOTE_LIMIT as REPORT_LIMIT
from hub.directory.search import search_organizations
from hub.errors import NotFound
from hub.portal.admin_directory import validator_name
from hub.portal.common import caller, login_required, page, portal_blueprint
from hub.portal.sending import service_capacities

blp = portal_blueprint("directory", __name__)

PAGE_SIZE = 50
# An entry not confirmed for this long is shown as possibly out of date (the validation
# reminder's period).
STALE_AFTER = timedelta(days=365)


@blp.get("/directory")
@login_required()
def search() -> Response:
    """Search the directory by words (name, services, places, contacts' roles; accents and
    case do not matter), kind and region."""
    filters = {"q": request.args.get("q", "").strip()[:200],
               "kind": request.args.get("kind", ""), "region": request.args.get("region", "")}
    if filters["kind"] not in set(OrganizationKind):
        filters["kind"] = ""
    if filters["region"] not in QUEBEC_REGIONS:
        filters["region"] = ""
    try:
        after = uuid.UUID(request.args.get("after", ""))
    except ValueError:
        after = None
    found = search_organizations(db.session, after_id=after, limit=PAGE_SIZE + 1,
                                 with_entries=False,
                                 **{name: value or None for name, value in filters.items()})
    return page("portal/directory.html", organizations=found[:PAGE_SIZE],
                next_after=found[PAGE_SIZE - 1].id if len(found) > PAGE_SIZE else None,
                filters=filters, regions=QUEBEC_REGIONS, kinds=list(OrganizationKind),
                now=utcnow(), stale_after=STALE_AFTER)


def _organization(organization_id: uuid.UUID) -> Organization:
    organization = db.session.get(Organization, organization_id, options=[
        selectinload(Organization.services), selectinload(Organization.locations),
        selectinload(Organization.contacts)])
    if organization is None:
        raise NotFound("organization", organization_id)
    return organization


def _entry_page(organization: Organization, status: int = 200, *,
                note_values: dict[str, str] | None = None,
                report_values: dict[str, str] | None = None,
                bad: set[str] | None = None, error: str | None = None) -> Response:
    own = caller().organization_id
    note = relationships.current_note(db.session, own, organization.id)
    history = relationships.note_history(db.session, own, organization.id, limit=20)
    if note_values is None:
        note_values = {"collaboration": (note.collaboration or "") if note else "",
                       "notes": (note.notes or "") if note else ""}
    age = utcnow() - organization.last_validated_at
    return page("portal/directory_entry.html", status, organization=organization,
                note=note, history=history[1:] if note else [], note_values=note_values,
                report_values=report_values or {"note": ""}, bad=bad or set(), error=error,
                own_entry=organization.id == own, stale=age > STALE_AFTER,
                age=format_timedelta(-age, add_direction=True),
                regions=QUEBEC_REGIONS, writer=validator_name,
                capacities={row["name"]: row for row in service_capacities(
                    organization, "", utcnow())},
                limits={"collaboration": relationships.COLLABORATION_LIMIT,
                        "notes": relationships.NOTES_LIMIT, "report": REPORT_LIMIT})


@blp.get("/directory/<uuid:organization_id>")
@login_required()
def entry(organization_id: uuid.UUID) -> Response:
    return _entry_page(_organization(organization_id))


@blp.post("/directory/<uuid:organization_id>/relationship")
@login_required()
def save_relationship(organization_id: uuid.UUID) -> Response:
    """Keep the user's organization's note about this partner (a new version when it
    changes; the earlier ones stay in its history)."""
    organization = _organization(organization_id)
    values = {name: request.form.get(name, "").strip() for name in ("collaboration", "notes")}
    bad = {name for name, limit in (("collaboration", relationships.COLLABORATION_LIMIT),
                                    ("notes", relationships.NOTES_LIMIT))
           if len(values[name]) > limit}
    if bad:
        return _entry_page(organization, 422, note_values=values, bad=bad, error=_(
            "The type of collaboration takes at most %(collaboration)s characters and the "
            "notes at most %(notes)s: shorten the field marked below.",
            collaboration=relationships.COLLABORATION_LIMIT, notes=relationships.NOTES_LIMIT))
    relationships.write_note(db.session, caller().organization_id, organization.id,
                             relationships.NoteText(values["collaboration"], values["notes"]),
                             updated_by=caller().actor)
    flash(_("Your organization's note is saved."), "success")
    return redirect(url_for("directory.entry", organization_id=organization.id) + "#note")


@blp.post("/directory/<uuid:organization_id>/report-outdated")
@login_required()
def report_outdated(organization_id: uuid.UUID) -> Response:
    """Tell the organization its entry is out of date; its admins see the report until they
    validate the entry again."""
    organization = _organization(organization_id)
    text = request.form.get("note", "").strip()
    if organization.id == caller().organization_id:
        return _entry_page(organization, 422, report_values={"note": text}, error=_(
            "This is your own organization's entry: correct it, or confirm it is still "
            "accurate, in the administration pages."))
    if len(text) > REPORT_LIMIT:
        return _entry_page(organization, 422, report_values={"note": text}, bad={"report"},
                           error=_("The note takes at most %(count)s characters: shorten it.",
                                   count=REPORT_LIMIT))
    editing.report_outdated(db.session, organization, caller(), text)
    flash(_("Thank you: %(name)s is told its entry is out of date.", name=organization.name),
          "success")
    return redirect(url_for("directory.entry", organization_id=organization.id))
