"""Households (docs/design.md §12): link participants who move together, and send the same
referral for every member at once."""

from __future__ import annotations

import uuid
from typing import Any

from flask import jsonify
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from hub.adapters.oauth import current_caller, require_scope
from hub.api.common import Blueprint, Input, Timestamp, pseudonym_key
from hub.api.referrals import ReferralIn, ReferralOut
from hub.consent.visibility import Reader
from hub.db import db, iso_utc
from hub.referrals import handoffs, households

blp = Blueprint(
    "households", __name__, url_prefix="/api/v1/households",
    description="Participants who move together, and referrals sent for all of them.",
)


class HouseholdIn(Input):
    participant_ids = fields.List(fields.UUID(), required=True,
                                  validate=validate.Length(min=2, max=20))


class HouseholdOut(Schema):
    id = fields.UUID()
    organization_id = fields.UUID()
    participant_ids = fields.List(fields.UUID())
    created_at = Timestamp()


class HouseholdReferralIn(ReferralIn):
    class Meta:
        exclude = ("participant_id", "forwarded_from")


class RefusalOut(Schema):
    participant_id = fields.UUID()
    organization_id = fields.UUID()
    detail = fields.String()


class HouseholdReferralsOut(Schema):
    items = fields.List(fields.Nested(ReferralOut))
    refused = fields.List(fields.Nested(RefusalOut))


def _view(household: households.Household) -> dict[str, Any]:
    return {"id": str(household.id), "organization_id": str(household.organization_id),
            "participant_ids": [str(p) for p in households.members_of(db.session,
                                                                      household.id)],
            "created_at": iso_utc(household.created_at)}


@blp.route("")
class Households(MethodView):
    @require_scope("participants:write")
    @blp.arguments(HouseholdIn())
    @blp.response(201, HouseholdOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Link participants of your organization who move together (two or more); a
        participant is in one household at most (409 otherwise)."""
        household = households.create_household(db.session, current_caller(),
                                                body["participant_ids"])
        return _view(household), 201


@blp.route("/<uuid:household_id>")
class HouseholdById(MethodView):
    @require_scope("participants:read")
    @blp.response(200, HouseholdOut)
    def get(self, household_id: uuid.UUID) -> dict[str, Any]:
        """One of your organization's households."""
        return _view(households.visible_household(db.session, current_caller(), household_id))


@blp.route("/<uuid:household_id>/members/<uuid:participant_id>")
class HouseholdMember(MethodView):
    @require_scope("participants:write")
    @blp.response(200, HouseholdOut)
    def put(self, household_id: uuid.UUID, participant_id: uuid.UUID) -> dict[str, Any]:
        """Add a participant of your organization to the household (a birth, a spouse who
        joins). Adding a member twice changes nothing; a participant already in another
        household is refused (409): remove them from it first."""
        household = households.add_members(db.session, current_caller(), household_id,
                                           [participant_id])
        return _view(household)

    @require_scope("participants:write")
    @blp.response(204)
    def delete(self, household_id: uuid.UUID, participant_id: uuid.UUID) -> None:
        """Take a member out of the household (they no longer move with the others). A
        household left with fewer than two people dissolves: reading it then answers 404.
        The members' legs are untouched; each no longer shows the other's."""
        households.remove_member(db.session, current_caller(), household_id, participant_id)


@blp.route("/<uuid:household_id>/referrals")
class HouseholdReferrals(MethodView):
    @require_scope("referrals:write")
    @blp.arguments(HouseholdReferralIn())
    @blp.response(201, HouseholdReferralsOut)
    def post(self, body: dict[str, Any], household_id: uuid.UUID) -> Any:
        """Send the same referral for every member: one leg each, each under that member's
        own consent. Members whose consent does not cover the receiver are listed in
        `refused` (record their consent, then send for them alone); when no member's does,
        nothing is sent (409 `consent_required`)."""
        caller = current_caller()
        households.visible_household(db.session, caller, household_id)
        members = households.members_of(db.session, household_id)
        sent, refused = handoffs.send_for_household(db.session, caller,
                                                    participant_id=members[0], **body)
        if not sent:  # nobody's consent covers the receiver: the first member's refusal
            raise refused[0]
        reader = Reader(db.session, caller, pseudonym_key())
        response = jsonify({
            "items": [reader.referral(leg, with_chain=True) for leg in sent],
            "refused": [{"participant_id": str(r.participant_id),
                         "organization_id": str(r.organization_id), "detail": str(r)}
                        for r in refused]})
        response.status_code = 201
        return response
