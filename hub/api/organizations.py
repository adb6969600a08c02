"""The directory of organizations: search, read, and each organization keeping its own entry."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy.orm import selectinload

from hub.adapters.oauth import current_caller, current_oauth_token, require_scope
from hub.api.common import decode_cursor, encode_cursor
from hub.api.directory_schemas import (
    EntryIn,
    OrganizationFilters,
    OrganizationPage,
    OrganizationSchema,
)
from hub.db import db
from hub.directory import editing
from hub.directory.organizations import Organization
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
        after = None
        if cursor:
            (after,) = decode_cursor(cursor, uuid.UUID)
        found = search_organizations(db.session, after_id=after, limit=limit + 1, **filters)
        page = found[:limit]
        more = len(found) > limit
        return {"items": page, "next_cursor": encode_cursor(page[-1].id) if more else None}


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
