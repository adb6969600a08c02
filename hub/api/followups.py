"""Follow-ups after the handoff (docs/design.md §10): the sending organization's list of
follow-ups due, and the records of each call (`hub.followups.records`)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify
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
    pseudonym_key,
    retrying,
)
from hub.api.idempotency import idempotent
from hub.api.participants import ParticipantOut
from hub.consent.visibility import Reader
from hub.db import db
from hub.followups import records
from hub.referrals.legs import visible_referral

blp = Blueprint("followups", __name__, url_prefix="/api/v1",
                description="Follow-ups after a completed handoff: what is due, what was "
                            "learned.")


class FollowUpIn(Input):
    reached = fields.Boolean(required=True, metadata={
        "description": "Whether the person was reached."})
    situation = fields.String(required=True, validate=validate.OneOf(
        [s.value for s in records.Situation]))
    in_destination_region = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "Still living in the destination region; null (the default) when not "
                       "known."})
    note = fields.String(allow_none=True, load_default=None,
                         validate=validate.Length(max=4000), metadata={
                             "description": "Encrypted; shown to your organization only."})
    due = fields.String(load_default=None, allow_none=True,
                        validate=validate.OneOf(list(records.DUE_KINDS)), metadata={
                            "description": "Which follow-up this answers; default the one "
                                           "due, else `ad_hoc`."})


class FollowUpOut(Schema):
    id = fields.UUID()
    referral_id = fields.UUID()
    due = fields.String(metadata={"enum": list(records.DUE_KINDS)})
    reached = fields.Boolean()
    situation = fields.String()
    in_destination_region = fields.Boolean(allow_none=True)
    note = fields.String(allow_none=True, metadata={
        "description": "Only for the sending organization."})
    recorded_at = Timestamp()
    recorded_by = fields.String()
    new_referral = fields.String(metadata={
        "description": "With `needs_support`: where to send the person a new referral."})


class FollowUpList(Schema):
    items = fields.List(fields.Nested(FollowUpOut))


class DueFollowUpOut(Schema):
    referral_id = fields.UUID()
    due = fields.String(metadata={"enum": list(records.SCHEDULED)})
    due_at = Timestamp()
    to_organization_id = fields.UUID()
    pathway = fields.String()
    participant = fields.Nested(ParticipantOut)


class DuePage(Schema):
    items = fields.List(fields.Nested(DueFollowUpOut))
    next_cursor = fields.String(allow_none=True)


def _record_response(record: records.FollowUpRecord, status: int = 201) -> Response:
    caller = current_caller()
    leg = visible_referral(db.session, caller, record.referral_id)
    view = Reader(db.session, caller, pseudonym_key()).followup(record, leg)
    if record.situation == records.Situation.NEEDS_SUPPORT:
        # The counsellor is offered a new referral for the same person.
        view["new_referral"] = "/api/v1/referrals"
    response = jsonify(view)
    response.status_code = status
    return response


def _record_again(stored: dict[str, Any], status: int) -> Response:
    record = db.session.get(records.FollowUpRecord, uuid.UUID(stored["id"]))
    assert record is not None  # records are never deleted
    return _record_response(record, status)


@blp.route("/followups/due")
class DueFollowUps(MethodView):
    @require_scope("referrals:read")
    @blp.arguments(PageArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, DuePage)
    def get(self, limit: int, cursor: str | None) -> dict[str, Any]:
        """The follow-ups of legs your organization sent that came due (30 and 180 days after
        completion) and are not recorded yet, oldest first; only participants whose
        `follow_up_contact` consent covers your organization. A 30-day follow-up left
        unrecorded gives way to the 180-day one when it comes due."""
        caller = current_caller()
        after = cursor_after(cursor, aware_datetime, uuid.UUID)
        found = records.due_followups(db.session, caller, after=after, limit=limit + 1)
        page, next_cursor = page_of(found, limit,
                                    lambda item: (item.due_at.isoformat(), item.referral.id))
        reader = Reader(db.session, caller, pseudonym_key())
        reader.entitle_page([item.referral for item in page])
        items = [{"referral_id": item.referral.id, "due": item.due, "due_at": item.due_at,
                  "to_organization_id": item.referral.to_organization_id,
                  "pathway": item.referral.pathway,
                  "participant": reader.participant(item.referral.participant)}
                 for item in page]
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/referrals/<uuid:referral_id>/followups")
class ReferralFollowUps(MethodView):
    @require_scope("referrals:write")
    @idempotent(current_client_id, rerender=_record_again)
    @blp.arguments(FollowUpIn())
    @blp.response(201, FollowUpOut)
    def post(self, body: dict[str, Any], referral_id: uuid.UUID) -> Response:
        """The sending organization records a follow-up of a completed leg. Needs the
        participant's active `follow_up_contact` consent for your organization (else 409
        `consent_required`). Event `referral.followup_recorded` (codes only) to both
        organizations. A scheduled follow-up is recorded once (409 after); ad hoc calls as
        often as they happen."""
        caller = current_caller()
        record = retrying(lambda: records.record_followup(db.session, caller, referral_id,
                                                          **body))
        return _record_response(record)

    @require_scope("referrals:read")
    @blp.response(200, FollowUpList)
    def get(self, referral_id: uuid.UUID) -> dict[str, Any]:
        """The follow-ups recorded for a leg, oldest first (the note for the sender only)."""
        caller = current_caller()
        leg = visible_referral(db.session, caller, referral_id)
        reader = Reader(db.session, caller, pseudonym_key())
        return {"items": [reader.followup(record, leg)
                          for record in records.records_of(db.session, leg.id)]}
