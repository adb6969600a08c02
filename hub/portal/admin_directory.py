"""The organization's directory entry, kept by its admin: services, places, contacts and
capacity, and the "still accurate" confirmation.

The form is read into the API's body (`EntryIn`) and saved by the API's use case
(`hub.directory.editing`), so the portal accepts and refuses exactly what the API does.  Lists
are edited in place: each row is a group of fields, one empty row to add another, and a row
whose fields are all cleared is removed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug import Response
from werkzeug.datastructures import MultiDict

from hub.accounts.users import names_of
from hub.api.directory_schemas import EntryIn
from hub.db import db
from hub.directory import editing
from hub.directory.organizations import (
    QUEBEC_REGIONS,
    Capacity,
    ContactChannel,
    Organization,
    ReferralMails,
    WaitlistBand,
)
from hub.errors import NotFound
from hub.followups.policies import PATHWAYS
from hub.portal.admin import ADMIN_ROLES, audit, is_hub_admin, managed_organization
from hub.portal.common import caller, login_required, page, portal_blueprint

blp = portal_blueprint("admin_directory", __name__)

ENTRY_FIELDS = ("name", "region", "capacity", "capacity_until", "description", "website",
                "referral_mails")
# The person in charge of the protection of personal information (Law 25), on the consent form.
OFFICER_FIELDS = ("name", "email")
# Fields of each row of a list, and those read as lists (checkboxes, comma-separated words).
ROW_FIELDS = {
    "services": ("name", "description", "eligibility_notes", "languages", "pathways",
                 "capacity", "waitlist_band"),
    "locations": ("name", "address", "city", "postal_code", "region"),
    "contacts": ("name", "role", "email", "phone", "preferred_channel", "notify_referrals",
                 "deadline_digests"),
}
# Checkboxes of a row (design §14): a row is empty when its other fields are.
CHECKBOXES = ("notify_referrals", "deadline_digests")
MAX_ROWS = 200


def _entry(organization_id: uuid.UUID) -> Organization:
    managed = managed_organization(organization_id)
    organization = db.session.get(Organization, managed.id, options=[
        selectinload(Organization.services), selectinload(Organization.locations),
        selectinload(Organization.contacts)], populate_existing=True)
    if organization is None:
        raise NotFound("organization", organization_id)
    return organization


def _rows(form: MultiDict[str, str], kind: str) -> list[dict[str, Any]]:
    """The rows of one list as posted, in order, without the rows left empty."""
    rows = []
    for index in range(MAX_ROWS + 1):
        prefix = f"{kind}-{index}-"
        if not any(key.startswith(prefix) for key in form):
            break
        row: dict[str, Any] = {}
        for name in ROW_FIELDS[kind]:
            if name == "pathways":
                row[name] = form.getlist(prefix + name)
            elif name == "languages":
                row[name] = [word.strip() for word in form.get(prefix + name, "").split(",")
                             if word.strip()]
            elif name in CHECKBOXES:
                row[name] = form.get(prefix + name) == "on"
            else:
                row[name] = form.get(prefix + name, "").strip() or None
        if any(value for name, value in row.items() if name not in CHECKBOXES):
            rows.append(row)
    return rows


def body_of(form: MultiDict[str, str]) -> dict[str, Any]:
    """The API's PATCH body this form stands for (every field: the form is the whole entry)."""
    body: dict[str, Any] = {name: form.get(name, "").strip() or None for name in ENTRY_FIELDS}
    if body["referral_mails"] is None:  # a form without the choice keeps the one made
        del body["referral_mails"]
    officer = {key: form.get(f"privacy_officer-{key}", "").strip() for key in OFFICER_FIELDS}
    # Both left empty: nobody named; one of them only: the API says which is missing.
    body["privacy_officer"] = ({key: value for key, value in officer.items() if value}
                               if any(officer.values()) else None)
    for kind in ROW_FIELDS:
        body[kind] = _rows(form, kind)
    return body


def _bad_fields(messages: Mapping[Any, Any], prefix: str = "") -> set[str]:
    """`services-0-languages` and the like: the form fields a validation error points at."""
    bad = set()
    for key, value in messages.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            bad |= _bad_fields(value, name + "-")
        bad.add(name)
    return bad


def _values_of(organization: Organization) -> dict[str, Any]:
    """The form's values for the entry as it is saved."""
    return {
        **{name: getattr(organization, name) or "" for name in ENTRY_FIELDS},
        **{f"privacy_officer-{key}": getattr(organization, f"privacy_officer_{key}") or ""
           for key in OFFICER_FIELDS},
        "services": [{"name": s.name, "description": s.description or "",
                      "eligibility_notes": s.eligibility_notes or "",
                      "languages": ", ".join(s.languages or []), "pathways": s.pathways,
                      "capacity": s.capacity or "", "waitlist_band": s.waitlist_band or ""}
                     for s in organization.services],
        "locations": [{name: getattr(place, name) or "" for name in ROW_FIELDS["locations"]}
                      for place in organization.locations],
        "contacts": [{name: getattr(contact, name) if name in CHECKBOXES
                      else getattr(contact, name) or "" for name in ROW_FIELDS["contacts"]}
                     for contact in organization.contacts],
    }


def _values_posted(form: MultiDict[str, str]) -> dict[str, Any]:
    """The form's values as posted, to show them again beside the errors."""
    values: dict[str, Any] = {name: form.get(name, "") for name in ENTRY_FIELDS}
    values.update({f"privacy_officer-{key}": form.get(f"privacy_officer-{key}", "")
                   for key in OFFICER_FIELDS})
    for kind, names in ROW_FIELDS.items():
        rows = []
        for index in range(MAX_ROWS):
            prefix = f"{kind}-{index}-"
            if not any(key.startswith(prefix) for key in form):
                break
            rows.append({name: form.getlist(prefix + name) if name == "pathways"
                         else form.get(prefix + name) == "on" if name in CHECKBOXES
                         else form.get(prefix + name, "") for name in names})
        values[kind] = [row for row in rows
                        if any(v for n, v in row.items() if n not in CHECKBOXES)]
    return values


def report_rows(organization: Organization) -> list[dict[str, Any]]:
    """The open reports that the entry is out of date, with the reporting organizations'
    names: what partners said, to check before confirming the entry."""
    reports = editing.open_reports(db.session, organization.id)
    ids = {r.reported_by_organization_id for r in reports}
    names = {o.id: o.name for o in db.session.scalars(
        select(Organization).where(Organization.id.in_(ids)))} if ids else {}
    return [{"reported_at": r.reported_at, "note": r.note,
             "by": names.get(r.reported_by_organization_id, "?"),
             "by_id": r.reported_by_organization_id} for r in reports]


def _page(organization: Organization, values: dict[str, Any], status: int = 200,
          bad: set[str] | None = None, error: str | None = None) -> Response:
    return page("portal/admin/entry.html", status, organization=organization, values=values,
                reports=report_rows(organization),
                bad=bad or set(), error=error, regions=QUEBEC_REGIONS,
                capacities=list(Capacity), pathways=PATHWAYS, channels=list(ContactChannel),
                waitlist_bands=list(WaitlistBand), referral_mails=list(ReferralMails))


@blp.get("/admin/<uuid:organization_id>/entry")
@login_required(ADMIN_ROLES)
def entry(organization_id: uuid.UUID) -> Response:
    organization = _entry(organization_id)
    return _page(organization, _values_of(organization))


@blp.post("/admin/<uuid:organization_id>/entry")
@login_required(ADMIN_ROLES)
def save_entry(organization_id: uuid.UUID) -> Response:
    organization = _entry(organization_id)
    try:
        changes = EntryIn().load(body_of(request.form))
    except ValidationError as invalid:
        messages = invalid.messages if isinstance(invalid.messages, dict) else {}
        return _page(organization, _values_posted(request.form), 422, _bad_fields(messages),
                     _("Check the fields marked below."))
    editing.check_may_edit(caller(), organization, is_hub_admin=is_hub_admin(),
                                  changes=changes)
    editing.update_entry(db.session, organization, changes,
                                validated_by=caller().actor)
    audit("directory.entry_saved", organization, organization.id)
    flash(_("Directory entry saved."), "success")
    return redirect(url_for("admin_directory.entry", organization_id=organization.id))


@blp.post("/admin/<uuid:organization_id>/entry/validate")
@login_required(ADMIN_ROLES)
def validate_entry(organization_id: uuid.UUID) -> Response:
    """The entry is still accurate: recorded with who said so and when."""
    organization = _entry(organization_id)
    editing.check_may_edit(caller(), organization, is_hub_admin=is_hub_admin())
    editing.mark_validated(organization, validated_by=caller().actor)
    db.session.flush()
    audit("directory.entry_validated", organization, organization.id)
    flash(_("Thank you: the entry is marked as still accurate."), "success")
    return redirect(url_for("admin_directory.entry", organization_id=organization.id))


def validator_name(validated_by: str | None) -> str | None:
    """Who last confirmed the entry, in words: a person's name, a partner system, an import."""
    if not validated_by:
        return None
    if validated_by.startswith("user:"):
        try:
            user_id = uuid.UUID(validated_by.removeprefix("user:"))
        except ValueError:
            return _("Portal user")
        person = names_of(db.session, {user_id}).get(user_id)
        return person.name if person else _("Portal user")
    if validated_by.startswith("client:"):
        return _("Partner system")
    return _("Directory import")


@blp.app_template_global()
def entry_validator(validated_by: str | None) -> str | None:
    return validator_name(validated_by)
