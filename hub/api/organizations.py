"""The directory of organizations: search, read, and each organization keeping its own entry."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from marshmallow import RAISE
from sqlalchemy.orm import selectinload

from hub.adapters.oauth import (
    current_caller,
    current_client_id,
    current_oauth_token,
    require_scope,
)
from hub.api.common import Blueprint, PageArgs, bounded_int, cursor_after, page_of
from hub.api.directory_schemas import (
    EntryIn,
    OrganizationFilters,
    OrganizationPage,
    OrganizationSchema,
    OutdatedReportIn,
    OutdatedReportOut,
    OutdatedReportPage,
    RelationshipHistory,
    RelationshipIn,
    RelationshipOut,
)
from hub.api.idempotency import idempotent
from hub.db import db
from hub.directory import editing, relationships
from hub.directory.organizations import Organization
from hub.directory.outdated import OutdatedReport
from hub.directory.search import search_organizations
from hub.errors import NotFound

blp = Blueprint(
    "organizations", __name__, url_prefix="/api/v1/organizations",
    description="The directory of the network's organizations: services, places, contacts, "
                "capacity.",
)


def _organization(organization_id: uuid.UUID) -> Organization:
    organization = db.session.get(Organization, organization_id, options=[
        selectinload(Organization.services), selectinload(Organization.locations),
        selectinload(Organization.contacts)])
    if organization is None:
        raise NotFound("organization", organization_id)
    return organization


def _editable(organization_id: uuid.UUID, changes: dict[str, Any] | None = None
              ) -> tuple[Organization, str]:
    organization = _organization(organization_id)
    caller = current_caller()
    is_admin = "hub:admin" in current_oauth_token().get_scope().split()
    editing.check_may_edit(caller, organization, is_hub_admin=is_admin,
                                  changes=changes or {})
    return organization, caller.actor


@blp.route("")
class Organizations(MethodView):
    @require_scope("directory:read")
    @blp.arguments(OrganizationFilters, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, OrganizationPage)
    def get(self, limit: int, cursor: str | None, **filters: Any) -> dict[str, Any]:
        """Search the directory by words, kind, region, pathway served and capacity."""
        after = cursor_after(cursor, uuid.UUID)
        found = search_organizations(db.session, after_id=after, limit=limit + 1, **filters)
        page, next_cursor = page_of(found, limit, lambda o: (o.id,))
        return {"items": page, "next_cursor": next_cursor}


@blp.route("/<uuid:organization_id>")
class OrganizationById(MethodView):
    @require_scope("directory:read")
    @blp.response(200, OrganizationSchema)
    def get(self, organization_id: uuid.UUID) -> Organization:
        """One organization's entry, with its services, locations and contacts."""
        return _organization(organization_id)

    @require_scope("directory:write")
    @blp.arguments(EntryIn, unknown=RAISE)
    @blp.response(200, OrganizationSchema)
    def patch(self, changes: dict[str, Any], organization_id: uuid.UUID) -> Organization:
        """Change the organization's own entry (hub administrators: any entry).

        `services`, `locations` and `contacts`, when sent, replace the lists whole.  The
        change also records the entry as validated now, by the caller."""
        organization, actor = _editable(organization_id, changes)
        return editing.update_entry(db.session, organization, changes,
                                           validated_by=actor)


@blp.route("/<uuid:organization_id>/validate")
class OrganizationValidation(MethodView):
    @require_scope("directory:write")
    @blp.response(200, OrganizationSchema)
    def post(self, organization_id: uuid.UUID) -> Organization:
        """Confirm the entry is still correct: records `last_validated_at` and `_by`."""
        organization, actor = _editable(organization_id)
        editing.mark_validated(organization, validated_by=actor)
        db.session.flush()
        return organization


def _relationship(partner_id: uuid.UUID, note: relationships.RelationshipNote | None
                  ) -> dict[str, Any]:
    if note is None:
        return {"organization_id": partner_id, "collaboration": None, "notes": None,
                "updated_by": None, "updated_at": None}
    return {"organization_id": partner_id, "collaboration": note.collaboration,
            "notes": note.notes, "updated_by": note.updated_by, "updated_at": note.updated_at}


@blp.route("/<uuid:organization_id>/relationship")
class Relationship(MethodView):
    @require_scope("directory:read")
    @blp.response(200, RelationshipOut)
    def get(self, organization_id: uuid.UUID) -> dict[str, Any]:
        """Your organization's note about its collaboration with this organization (the type
        of collaboration, your notes); private to your organization.  Fields are null when
        nothing was written yet."""
        partner = _organization(organization_id)
        note = relationships.current_note(db.session, current_caller().organization_id,
                                          partner.id)
        return _relationship(partner.id, note)

    @require_scope("directory:write")
    @blp.arguments(RelationshipIn, unknown=RAISE)
    @blp.response(200, RelationshipOut)
    def put(self, body: dict[str, Any], organization_id: uuid.UUID) -> dict[str, Any]:
        """Write your organization's note about this organization; any user or system of
        your organization may.  Each change is kept as a version (see `/history`)."""
        partner = _organization(organization_id)
        caller = current_caller()
        note = relationships.write_note(
            db.session, caller.organization_id, partner.id,
            relationships.NoteText(body["collaboration"], body["notes"]),
            updated_by=caller.actor)
        db.session.flush()
        return _relationship(partner.id, note)


@blp.route("/<uuid:organization_id>/relationship/history")
class RelationshipVersions(MethodView):
    @require_scope("directory:read")
    @blp.arguments(PageArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, RelationshipHistory)
    def get(self, organization_id: uuid.UUID, limit: int, cursor: str | None
            ) -> dict[str, Any]:
        """Every version of your organization's note about this organization, newest first."""
        partner = _organization(organization_id)
        before = cursor_after(cursor, bounded_int)
        versions = relationships.note_history(db.session, current_caller().organization_id,
                                              partner.id, before_id=before, limit=limit + 1)
        page, next_cursor = page_of(versions, limit, lambda note: (note.id,))
        return {"items": [_relationship(partner.id, note) for note in page],
                "next_cursor": next_cursor}


@blp.route("/<uuid:organization_id>/report-outdated")
class ReportOutdated(MethodView):
    @require_scope("directory:read")
    @idempotent(current_client_id)
    @blp.arguments(OutdatedReportIn, unknown=RAISE)
    @blp.response(201, OutdatedReportOut)
    def post(self, body: dict[str, Any], organization_id: uuid.UUID) -> OutdatedReport:
        """Report this organization's entry as out of date (a contact who left, a service
        that closed...).  Any partner reading the directory may; the organization receives
        `organization.outdated_reported` and sees the report in its list until it validates
        its entry again."""
        organization = _organization(organization_id)
        return editing.report_outdated(db.session, organization, current_caller(),
                                       body.get("note"))


@blp.route("/<uuid:organization_id>/outdated-reports")
class OutdatedReports(MethodView):
    @require_scope("directory:write")
    @blp.arguments(PageArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, OutdatedReportPage)
    def get(self, organization_id: uuid.UUID, limit: int, cursor: str | None
            ) -> dict[str, Any]:
        """The open reports that your organization's entry is out of date, oldest first;
        validating the entry (`/validate`, or any change of it) closes them."""
        organization, _ = _editable(organization_id)
        reports = editing.open_reports(db.session, organization.id)
        # Few open reports at a time: they are read whole, and the cursor is an offset.
        start = max(cursor_after(cursor, int) or 0, 0)
        page, next_cursor = page_of(reports[start:start + limit + 1], limit,
                                    lambda _: (start + limit,))
        return {"items": page, "next_cursor": next_cursor}
