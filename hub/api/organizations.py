"""Directory of organizations (read side): who can receive a referral, and where."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from hub import directory
from hub.adapters.oauth import require_scope
from hub.api.common import PageArgs, Timestamp, decode_cursor, encode_cursor
from hub.db import db
from hub.directory import Organization
from hub.errors import NotFound

blp = Blueprint(
    "organizations", __name__, url_prefix="/api/v1/organizations",
    description="The directory of the network's organizations.",
)


class OrganizationSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    kind = fields.String(metadata={"enum": list(directory.OrganizationKind)})
    region = fields.String(metadata={"description": "Québec administrative region code."})
    region_name = fields.Function(lambda org: directory.QUEBEC_REGIONS.get(org.region))
    capacity = fields.String(metadata={"enum": list(directory.Capacity)})
    created_at = Timestamp()
    last_validated_at = Timestamp()


class OrganizationPage(Schema):
    items = fields.List(fields.Nested(OrganizationSchema))
    next_cursor = fields.String(allow_none=True)


class OrganizationFilters(PageArgs):
    kind = fields.String(validate=validate.OneOf(list(directory.OrganizationKind)))
    region = fields.String(validate=validate.OneOf(list(directory.QUEBEC_REGIONS)))
    q = fields.String(validate=validate.Length(1, 200),
                      metadata={"description": "Text in the organization's name."})


@blp.route("")
class Organizations(MethodView):
    @require_scope("directory:read")
    @blp.arguments(OrganizationFilters, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, OrganizationPage)
    def get(self, limit: int, cursor: str | None, **filters: Any) -> dict[str, Any]:
        """List organizations, filtered by kind, region and name."""
        after = None
        if cursor:
            (after,) = decode_cursor(cursor, uuid.UUID)
        found = directory.search_organizations(db.session, after_id=after, limit=limit + 1,
                                               **filters)
        page = found[:limit]
        more = len(found) > limit
        return {"items": page, "next_cursor": encode_cursor(page[-1].id) if more else None}


@blp.route("/<uuid:organization_id>")
class OrganizationById(MethodView):
    @require_scope("directory:read")
    @blp.response(200, OrganizationSchema)
    def get(self, organization_id: uuid.UUID) -> Organization:
        """One organization of the directory."""
        organization = db.session.get(Organization, organization_id)
        if organization is None:
            raise NotFound("organization", organization_id)
        return organization
