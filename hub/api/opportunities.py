"""Opportunities from the regions (docs/design.md §12): publish, browse, withdraw, the
publisher's candidates, and the regions an organization follows (`hub.opportunities`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask.views import MethodView
from marshmallow import RAISE, Schema, fields, validate

from hub.adapters.oauth import current_caller, current_client_id, require_scope
from hub.api.common import (
    Blueprint,
    Input,
    PageArgs,
    Timestamp,
    aware_datetime,
    cursor_after,
    page_of,
)
from hub.api.idempotency import idempotent
from hub.db import db, iso_utc
from hub.directory.organizations import QUEBEC_REGIONS, unknown_region
from hub.opportunities import offers, publishing
from hub.opportunities.offers import ClosedReason, Kind, OpportunityStatus
from hub.referrals.lifecycle import Pathway, Status

blp = Blueprint("opportunities", __name__, url_prefix="/api/v1/opportunities",
                description="Jobs, internships and training places offered to the network's "
                            "candidates, and the regions your organization follows.")

REGION_CODES = list(QUEBEC_REGIONS)
UNKNOWN_REGION = unknown_region("{input}")  # marshmallow puts the value in
PATHWAY_CODES = [p.value for p in Pathway]


class OpportunityIn(Input):
    title = fields.String(required=True, validate=validate.Length(1, publishing.MAX_TITLE))
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in Kind]))
    region = fields.String(required=True, validate=validate.OneOf(
        REGION_CODES, error=UNKNOWN_REGION), metadata={"description": "Where the place is."})
    municipality = fields.String(required=True,
                                 validate=validate.Length(1, publishing.MAX_MUNICIPALITY))
    pathways = fields.List(
        fields.String(validate=validate.OneOf(PATHWAY_CODES)), required=True,
        validate=validate.Length(1, len(PATHWAY_CODES)),
        metadata={"description": "The pathways of the candidates it suits."})
    description = fields.String(required=True,
                                validate=validate.Length(1, publishing.MAX_DESCRIPTION))
    languages = fields.List(
        fields.String(validate=validate.Regexp(
            publishing.BCP47, error="Use a BCP 47 language tag such as fr, en or es.")),
        required=True, validate=validate.Length(1, 10),
        metadata={"description": "Languages the work or training is done in (BCP 47)."})
    starts_on = fields.Date(allow_none=True, load_default=None, metadata={
        "description": "The first day, today or later (optional)."})
    closes_on = fields.Date(required=True, metadata={
        "description": "The last day candidates are referred (Québec time), today or later; "
                       "the opportunity closes the day after."})
    places = fields.Integer(required=True, validate=validate.Range(1, publishing.MAX_PLACES),
                            metadata={"description": "It closes once that many candidates "
                                                     "were accepted."})


class OpportunityOut(Schema):
    id = fields.UUID()
    organization_id = fields.UUID(metadata={"description": "The publisher."})
    title = fields.String()
    kind = fields.String(metadata={"enum": [k.value for k in Kind]})
    region = fields.String()
    municipality = fields.String()
    pathways = fields.List(fields.String())
    description = fields.String()
    languages = fields.List(fields.String())
    starts_on = fields.String(allow_none=True, metadata={"format": "date"})
    closes_on = fields.String(metadata={"format": "date"})
    places = fields.Integer()
    status = fields.String(metadata={"enum": [s.value for s in OpportunityStatus]})
    closed_reason = fields.String(allow_none=True,
                                  metadata={"enum": [r.value for r in ClosedReason]})
    published_at = Timestamp()
    closed_at = Timestamp(allow_none=True)
    version = fields.Integer()


class OpportunityPage(Schema):
    items = fields.List(fields.Nested(OpportunityOut))
    next_cursor = fields.String(allow_none=True)


class OpportunityFilters(PageArgs):
    region = fields.String(validate=validate.OneOf(REGION_CODES))
    pathway = fields.String(validate=validate.OneOf(PATHWAY_CODES))
    include_closed = fields.Boolean(load_default=False, metadata={
        "description": "Closed ones too (default: open ones only)."})


class SendingOrganizationOut(Schema):
    id = fields.UUID()
    name = fields.String()


class CandidateLegOut(Schema):
    referral_id = fields.UUID()
    status = fields.String(metadata={"enum": [s.value for s in Status]})
    sent_at = Timestamp()
    from_organization = fields.Nested(SendingOrganizationOut)
    needed_by = fields.String(allow_none=True, metadata={"format": "date"})


class CandidatesOut(Schema):
    opportunity_id = fields.UUID()
    places = fields.Integer()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Legs referred to the opportunity, per status."})
    items = fields.List(fields.Nested(CandidateLegOut), metadata={
        "description": "The legs, oldest first; no personal data: open the leg "
                       "(GET /api/v1/referrals/{id}) to see the person as you may."})


class FollowsIn(Input):
    regions = fields.List(fields.String(validate=validate.OneOf(
        REGION_CODES, error=UNKNOWN_REGION)), required=True,
        validate=validate.Length(max=len(REGION_CODES)))
    daily_mail = fields.Boolean(load_default=False, metadata={
        "description": "A mail at 8:00 listing the opportunities published in these regions "
                       "since the last one."})


class FollowsOut(Schema):
    regions = fields.List(fields.String())
    daily_mail = fields.Boolean()


def _follows_view(follows: list[offers.RegionFollow]) -> dict[str, Any]:
    return {"regions": [f.region for f in follows],
            "daily_mail": any(f.daily_mail for f in follows)}


@blp.route("")
class Opportunities(MethodView):
    @require_scope("opportunities:write")
    @idempotent(current_client_id)
    @blp.arguments(OpportunityIn())
    @blp.response(201, OpportunityOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Publish an opportunity (regional partners, employers, insertion enterprises and
        entrepreneurship agencies; others get 403). Organizations following its region get
        `opportunity.published`."""
        opportunity = publishing.publish(db.session, current_caller(), **body)
        return offers.view(opportunity), 201

    @require_scope("opportunities:read")
    @blp.arguments(OpportunityFilters, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, OpportunityPage)
    def get(self, limit: int, cursor: str | None, **filters: Any) -> dict[str, Any]:
        """Opportunities of the whole network, newest first; open ones unless
        `include_closed`."""
        after: tuple[datetime, uuid.UUID] | None = cursor_after(cursor, aware_datetime, uuid.UUID)
        found = publishing.browse(db.session, current_caller(), after=after, limit=limit + 1,
                                  **filters)
        page, next_cursor = page_of(found, limit, lambda o: (o.published_at.isoformat(), o.id))
        return {"items": [offers.view(o) for o in page], "next_cursor": next_cursor}


@blp.route("/follows")
class Follows(MethodView):
    @require_scope("opportunities:read")
    @blp.response(200, FollowsOut)
    def get(self) -> dict[str, Any]:
        """The regions your organization follows: their opportunities' events reach your feed
        and webhooks, and the daily mail when asked."""
        return _follows_view(publishing.followed_regions(db.session, current_caller()))

    @require_scope("opportunities:write")
    @blp.arguments(FollowsIn())
    @blp.response(200, FollowsOut)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the regions your organization follows (an empty list follows none)."""
        return _follows_view(publishing.follow_regions(
            db.session, current_caller(), body["regions"], body["daily_mail"]))


@blp.route("/<uuid:opportunity_id>")
class OpportunityById(MethodView):
    @require_scope("opportunities:read")
    @blp.response(200, OpportunityOut)
    def get(self, opportunity_id: uuid.UUID) -> dict[str, Any]:
        """One opportunity (any organization may read it)."""
        return offers.view(publishing.get(db.session, current_caller(), opportunity_id))


@blp.route("/<uuid:opportunity_id>/withdraw")
class Withdraw(MethodView):
    @require_scope("opportunities:write")
    @blp.response(200, OpportunityOut)
    def post(self, opportunity_id: uuid.UUID) -> dict[str, Any]:
        """Your organization withdraws its opportunity: it closes (`withdrawn`) and takes no
        more candidates; legs already sent go on. Withdrawing a closed one changes nothing."""
        return offers.view(publishing.withdraw(db.session, current_caller(), opportunity_id))


@blp.route("/<uuid:opportunity_id>/candidates")
class Candidates(MethodView):
    @require_scope("opportunities:read")
    @blp.response(200, CandidatesOut)
    def get(self, opportunity_id: uuid.UUID) -> dict[str, Any]:
        """The candidates referred to your organization's opportunity: how many per status
        and their legs (404 for an opportunity of another organization)."""
        found = publishing.candidates(db.session, current_caller(), opportunity_id)
        return {
            "opportunity_id": str(found.opportunity.id),
            "places": found.opportunity.places,
            "counts": found.counts,
            "items": [{"referral_id": str(leg.referral_id), "status": leg.status,
                       "sent_at": iso_utc(leg.sent_at),
                       "from_organization": {"id": str(leg.from_organization_id),
                                             "name": leg.from_organization_name},
                       "needed_by": leg.needed_by.isoformat() if leg.needed_by else None}
                      for leg in found.legs],
        }
