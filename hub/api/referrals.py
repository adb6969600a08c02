"""Referral legs: send, list, read, history, and the lifecycle transitions of docs/design.md §2."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from flask import Response, jsonify, url_for
from flask.views import MethodView
from marshmallow import RAISE, Schema, fields, validate

from hub.accounts.callers import Caller
from hub.adapters.oauth import current_caller, current_client_id, require_scope
from hub.api.common import (
    Blueprint,
    Input,
    PageArgs,
    Timestamp,
    aware_datetime,
    cursor_after,
    etag,
    expected_version,
    page_of,
    pseudonym_key,
    retrying,
)
from hub.api.idempotency import idempotent
from hub.api.openapi import reads_header
from hub.api.participants import ParticipantOut
from hub.consent.visibility import Reader
from hub.db import db
from hub.errors import Invalid
from hub.events.envelope import render_events
from hub.events.feed import subject_history
from hub.referrals import handoffs, legs, lifecycle
from hub.referrals.lifecycle import Action

blp = Blueprint(
    "referrals", __name__, url_prefix="/api/v1/referrals",
    description="Referral legs and their lifecycle.",
)


def _codes(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


class ReferralIn(Input):
    participant_id = fields.UUID(required=True)
    to_organization_id = fields.UUID(required=True)
    pathway = fields.String(required=True, validate=validate.OneOf(_codes(lifecycle.Pathway)))
    stage = fields.String(
        allow_none=True, load_default=None, validate=validate.OneOf(_codes(lifecycle.Stage)),
        metadata={"description": "Required for entrepreneurship pathways, absent otherwise."},
    )
    priority = fields.String(
        load_default="routine", validate=validate.OneOf(_codes(lifecycle.Priority))
    )
    reason_for_referral = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=4000)
    )
    needs = fields.List(
        fields.String(validate=validate.Length(1, 200)),
        load_default=list, validate=validate.Length(max=50),
    )
    forwarded_from = fields.UUID(allow_none=True, load_default=None)
    opportunity_id = fields.UUID(
        allow_none=True, load_default=None,
        metadata={"description": "An open opportunity the participant is a candidate for; "
                  "the leg goes to its publisher (docs/design.md §12)."})
    needed_by = fields.Date(
        allow_none=True, load_default=None,
        metadata={"description": "The day the participant is needed there (first day of the "
                  "job, departure), today or later. An urgent leg's deadlines fall no later "
                  "than 17:00 on the business day before it."})


class DeadlinesOut(Schema):
    acknowledge_by = Timestamp(allow_none=True)
    decide_by = Timestamp(allow_none=True)
    start_by = Timestamp(allow_none=True)


class ChainLegOut(Schema):
    id = fields.UUID()
    from_organization_id = fields.UUID()
    to_organization_id = fields.UUID()
    status = fields.String()
    forwarded_from = fields.UUID(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()


class HouseholdLegOut(Schema):
    id = fields.UUID()
    participant_id = fields.UUID()
    to_organization_id = fields.UUID()
    status = fields.String()
    needed_by = fields.String(allow_none=True, metadata={"format": "date"})


class ReferralOut(Schema):
    id = fields.UUID()
    status = fields.String(metadata={"enum": _codes(lifecycle.Status)})
    version = fields.Integer(metadata={"description": "Also the ETag; send it in If-Match."})
    participant_id = fields.UUID()
    participant = fields.Nested(ParticipantOut)
    from_organization_id = fields.UUID()
    to_organization_id = fields.UUID()
    pathway = fields.String()
    stage = fields.String(allow_none=True)
    priority = fields.String()
    needed_by = fields.String(allow_none=True, metadata={"format": "date"})
    opportunity_id = fields.UUID(allow_none=True, metadata={
        "description": "The opportunity the participant is a candidate for, if any."})
    reason_for_referral = fields.String(allow_none=True)
    needs = fields.List(fields.String())
    withheld = fields.List(
        fields.String(),
        metadata={"description": "Fields kept from you: an employer or insertion enterprise "
                  "reads names and contact channels only, unless the participant's consent "
                  "shares the details (docs/design.md §12)."})
    chain_id = fields.UUID()
    forwarded_from = fields.UUID(allow_none=True)
    forwarded_to = fields.UUID(allow_none=True)
    decline_reason = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()
    deadlines = fields.Nested(DeadlinesOut)
    household_legs = fields.List(
        fields.Nested(HouseholdLegOut),
        metadata={"description": "To the sending organization, in `GET /referrals/{id}` and "
                  "when a leg is created: the open legs it sent for the other members of the "
                  "participant's household (docs/design.md §12)."})
    chain = fields.List(
        fields.Nested(ChainLegOut),
        metadata={"description": "Every leg of the participant's path; in `GET "
                  "/referrals/{id}` and when a leg is created or forwarded."},
    )


class ReferralPage(Schema):
    items = fields.List(fields.Nested(ReferralOut))
    next_cursor = fields.String(allow_none=True)


class ReferralFilters(PageArgs):
    direction = fields.String(validate=validate.OneOf(["inbound", "outbound"]))
    status = fields.String(metadata={
        "description": "One status, or several separated by commas.",
        # Parts between commas: a status or nothing, spaces around ignored (as the view reads).
        "pattern": r"^\s*(({0})\s*)?(,\s*(({0})\s*)?)*$".format("|".join(lifecycle.Status))})
    pathway = fields.String(validate=validate.OneOf(_codes(lifecycle.Pathway)))
    priority = fields.String(validate=validate.OneOf(_codes(lifecycle.Priority)))
    updated_since = Timestamp()


class EventOut(Schema):
    specversion = fields.String()
    id = fields.String()
    source = fields.String()
    type = fields.String()
    subject = fields.String()
    time = fields.String()
    datacontenttype = fields.String()
    sequence = fields.Integer()
    data = fields.Dict()


class EventList(Schema):
    items = fields.List(fields.Nested(EventOut))


# --- transition bodies ------------------------------------------------------------------

class NoteBody(Input):
    note = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=4000))


class DeclineBody(NoteBody):
    reason = fields.String(required=True, validate=validate.OneOf(_codes(lifecycle.DeclineReason)))


class CompleteBody(NoteBody):
    outcome = fields.String(required=True, validate=validate.OneOf(_codes(lifecycle.Outcome)))


class ForwardBody(NoteBody):
    to_organization_id = fields.UUID(required=True)


class CancelBody(NoteBody):
    reason = fields.String(
        allow_none=True, load_default=None,
        validate=validate.OneOf(legs.CALLER_CANCEL_REASONS),
    )


def leg_response(referral: legs.Referral, status: int = 200, *,
                 caller: Caller | None = None, with_chain: bool = False) -> Response:
    """The leg as the caller may see it, with its ETag.

    `Reader.referral` already gives exactly the documented `ReferralOut` shape, so the JSON
    is written directly rather than run through the schema a second time (the hottest path
    of the API; tests compare the output with the OpenAPI schema).
    """
    reader = Reader(db.session, caller or current_caller(), pseudonym_key())
    response = jsonify(reader.referral(referral, with_chain=with_chain))
    response.status_code = status
    response.headers["ETag"] = etag(referral.version)
    response.headers["Location"] = url_for("referrals.ReferralById", referral_id=referral.id)
    return response


def leg_again(stored: dict[str, Any], status: int) -> Response:
    """A replayed answer about a leg, built again for the caller as of now."""
    leg = legs.visible_referral(db.session, current_caller(), uuid.UUID(stored["id"]))
    return leg_response(leg, status, with_chain=status == 201)


@blp.route("")
class Referrals(MethodView):
    @require_scope("referrals:write")
    @idempotent(current_client_id, rerender=leg_again)
    @blp.arguments(ReferralIn())  # an instance: a class would be instantiated per request
    @blp.response(201, ReferralOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Create a referral leg and send it to the receiving organization."""
        referral = handoffs.send_referral(db.session, current_caller(), **body)
        return leg_response(referral, 201, with_chain=True)

    @require_scope("referrals:read")
    @blp.arguments(ReferralFilters, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, ReferralPage)
    def get(self, limit: int, cursor: str | None, status: str | None = None,
            **filters: Any) -> dict[str, Any]:
        """Your organization's legs, inbound and outbound, oldest change first."""
        caller = current_caller()
        statuses = None
        if status:
            statuses = [s.strip() for s in status.split(",") if s.strip()]
            unknown = [s for s in statuses if s not in _codes(lifecycle.Status)]
            if unknown:
                raise Invalid({"query.status": [
                    f"Unknown status {', '.join(unknown)}; one of {', '.join(lifecycle.Status)}."]})
        after = cursor_after(cursor, aware_datetime, uuid.UUID)
        found = legs.list_referrals(db.session, caller, status=statuses, after=after,
                                    limit=limit + 1, **filters)
        page, next_cursor = page_of(found, limit, lambda r: (r.updated_at.isoformat(), r.id))
        reader = Reader(db.session, caller, pseudonym_key())
        return {"items": [reader.referral(r) for r in page], "next_cursor": next_cursor}


@blp.route("/<uuid:referral_id>")
class ReferralById(MethodView):
    @require_scope("referrals:read")
    @blp.response(200, ReferralOut)
    def get(self, referral_id: uuid.UUID) -> Any:
        """One leg, with the participant's whole chain of legs."""
        return leg_response(legs.visible_referral(db.session, current_caller(), referral_id),
                             with_chain=True)


@blp.route("/<uuid:referral_id>/events")
class ReferralEvents(MethodView):
    @require_scope("referrals:read")
    @blp.response(200, EventList)
    def get(self, referral_id: uuid.UUID) -> dict[str, Any]:
        """The leg's history: every event, in order, as CloudEvents."""
        caller = current_caller()
        referral = legs.visible_referral(db.session, caller, referral_id)
        events = subject_history(db.session, referral.subject)
        reader = Reader(db.session, caller, pseudonym_key())
        return {"items": render_events(db.session, reader, events)}


TRANSITION_BODIES: dict[Action, type[Schema]] = {
    Action.ACKNOWLEDGE: NoteBody,
    Action.ACCEPT: NoteBody,
    Action.START: NoteBody,
    Action.DECLINE: DeclineBody,
    Action.COMPLETE: CompleteBody,
    Action.FORWARD: ForwardBody,
    Action.CANCEL: CancelBody,
}

TRANSITION_DOCS: dict[Action, str] = {
    Action.ACKNOWLEDGE: "Receiving organization: you have seen the leg.",
    Action.ACCEPT: "Receiving organization: you will serve the participant.",
    Action.DECLINE: "Receiving organization: you will not; give a reason code.",
    Action.START: "Receiving organization: first contact with the participant took place.",
    Action.COMPLETE: "Receiving organization: the service ended; give an outcome code.",
    Action.FORWARD: "Receiving organization: pass the participant on. Closes this leg and "
    "returns the new leg (201).",
    Action.CANCEL: "Sending organization: withdraw the referral.",
}


def _transition_view(action: Action) -> Callable[..., Any]:
    scope = "referrals:write" if action is Action.CANCEL else "referrals:respond"
    status = 201 if action is Action.FORWARD else 200

    @require_scope(scope)
    @reads_header("If-Match")
    @idempotent(current_client_id, rerender=leg_again)
    @blp.arguments(TRANSITION_BODIES[action]())  # one instance, not one per request
    @blp.response(status, ReferralOut)
    def view(body: dict[str, Any], referral_id: uuid.UUID) -> Any:
        caller = current_caller()
        version = expected_version()
        leg = retrying(lambda: handoffs.transition(
            db.session, caller, referral_id, action, expected_version=version,
            note=body.get("note"), reason=body.get("reason"), outcome=body.get("outcome"),
            to_organization_id=body.get("to_organization_id"),
        ))
        return leg_response(leg, status, with_chain=action is Action.FORWARD)

    view.__name__ = f"{action.value}_referral"
    view.__doc__ = TRANSITION_DOCS[action] + (
        "\n\nSend `If-Match` with the leg's ETag to refuse the change (412) if the leg changed "
        "since you read it. A transition the lifecycle does not allow gets 409 with the allowed "
        "actions."
    )
    return view


for _action in TRANSITION_BODIES:
    blp.route(f"/<uuid:referral_id>/{_action.value}", methods=["POST"],
              endpoint=_action.value)(_transition_view(_action))
