"""Participants: register (your organization's) and read (those you may see)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify, url_for
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate

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
)
from hub.api.directory_schemas import ONE_LINE, ONE_LINE_DOC
from hub.api.idempotency import idempotent
from hub.api.privacy_incidents import ErasureOut
from hub.consent import consents, visibility
from hub.db import db
from hub.directory.organizations import QUEBEC_REGIONS
from hub.errors import NotAllowed
from hub.privacy import erasure, person_copy
from hub.referrals import correction, participants

blp = Blueprint(
    "participants", __name__, url_prefix="/api/v1/participants",
    description="People referred, with minimal personal data.",
)

BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _plausible_birth_year(year: int) -> None:
    # Checked at each request, not at import: a server running over New Year stays right.
    if not 1900 <= year <= datetime.now(UTC).year:
        raise ValidationError(f"Must be between 1900 and {datetime.now(UTC).year}.")


class ParticipantIn(Input):
    given_name = fields.String(required=True, validate=[validate.Length(1, 200), ONE_LINE],
                               metadata=ONE_LINE_DOC)
    family_name = fields.String(required=True, validate=[validate.Length(1, 200), ONE_LINE],
                                metadata=ONE_LINE_DOC)
    preferred_language = fields.String(
        required=True,
        validate=[
            validate.Length(2, 35),
            validate.Regexp(BCP47, error="Use a BCP 47 language tag such as fr, en or es."),
        ],
        metadata={"example": "fr"},
    )
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    phone = fields.String(allow_none=True, validate=validate.Length(1, 40))
    birth_year = fields.Integer(allow_none=True, validate=lambda year: _plausible_birth_year(year))
    region = fields.String(allow_none=True, validate=validate.OneOf(list(QUEBEC_REGIONS)))
    allow_duplicate = fields.Boolean(
        load_default=False,
        metadata={"description": "Register even though your organization has a participant "
                  "with the same names, birth year and contact (409 `possible-duplicate` "
                  "otherwise): set it once the counsellor confirmed it is another person."},
    )


class ParticipantOut(Schema):
    id = fields.UUID()
    reference = fields.String(metadata={"description": "Pseudonym, for coordinators."})
    organization_id = fields.UUID()
    given_name = fields.String()
    family_name = fields.String()
    preferred_language = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    birth_year = fields.Integer(allow_none=True)
    region = fields.String(allow_none=True)
    created_at = Timestamp()
    version = fields.Integer(metadata={
        "description": "Goes up with every correction; also the ETag, to send in If-Match."})
    redacted = fields.Boolean(
        metadata={"description": "True when personal data is withheld from this reader."}
    )
    erased = fields.Boolean(
        metadata={"description": "True when the participant's personal data was erased "
                  "(with `redacted`): nobody reads it any more."})
    withheld = fields.List(
        fields.String(),
        metadata={"description": "Present when some fields are kept from an employer or "
                  "insertion enterprise: it reads names and contact channels only, unless "
                  "the participant's consent shares the details (docs/design.md §12)."})


class ParticipantPage(Schema):
    items = fields.List(fields.Nested(ParticipantOut))
    next_cursor = fields.String(allow_none=True)


class ParticipantQuery(PageArgs):
    q = fields.String(load_default="", validate=validate.Length(max=200), metadata={
        "description": "Name words (accents, case, hyphens and order ignored; each word may be "
        "the beginning of a name, two letters at least), an email, or phone digits (any "
        "format; the whole number, or its last 7 or 4 digits). Empty: every participant."})


class ParticipantCorrection(ParticipantIn):
    allow_duplicate = fields.Boolean(
        load_default=False,
        metadata={"description": "Correct even though the corrected record matches another "
                  "participant of your organization (409 `possible-duplicate` otherwise)."},
    )


def _with_etag(view: dict[str, Any], version: int, status: int = 200) -> Response:
    response = jsonify(view)
    response.status_code = status
    response.headers["ETag"] = etag(version)
    return response


def _participant_again(stored: dict[str, Any], status: int) -> Response:
    """A replayed registration, shown again through the visibility rules and the access log."""
    caller = current_caller()
    participant = visibility.visible_participant(db.session, caller, uuid.UUID(stored["id"]))
    response = jsonify(visibility.Reader(db.session, caller, pseudonym_key())
                       .participant(participant))
    response.status_code = status
    response.headers["Location"] = url_for("participants.ParticipantById",
                                           participant_id=participant.id)
    return response


@blp.route("")
class Participants(MethodView):
    @require_scope("participants:write")
    @idempotent(current_client_id, rerender=_participant_again)
    @blp.arguments(ParticipantIn)
    @blp.response(201, ParticipantOut)
    def post(self, personal_data: dict[str, Any]) -> Any:
        """Register a participant for your organization.

        If your organization already has the same person (same names and birth year, and a
        contact in common), the answer is 409 `possible-duplicate` with the matching ids.
        """
        caller = current_caller()
        if caller.is_coordinator:
            raise NotAllowed("Coordination bodies watch the network; they register no "
                             "participants.")
        participant = participants.register_participant(
            db.session, organization_id=caller.organization_id, **personal_data
        )
        view = visibility.participant_view(participant, entitled=True, coordinator=False,
                                           key=pseudonym_key())
        location = url_for("participants.ParticipantById", participant_id=participant.id)
        return view, 201, {"Location": location}


    @require_scope("participants:read")
    @blp.arguments(ParticipantQuery, location="query", as_kwargs=True)
    @blp.response(200, ParticipantPage)
    def get(self, q: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """Search your organization's participants, newest first.

        Look a person up before registering them: by name (accents, case, hyphens and word
        order ignored; every word may be a beginning), by email, or by phone digits. Names
        stay encrypted: the search compares keyed hashes (docs/privacy.md)."""
        caller = current_caller()
        after = cursor_after(cursor, aware_datetime, uuid.UUID)
        found = participants.search(db.session, caller.organization_id, q, limit=limit + 1,
                                    after=after)
        page, next_cursor = page_of(found, limit, lambda p: (p.created_at.isoformat(), p.id))
        reader = visibility.Reader(db.session, caller, pseudonym_key())
        return {"items": [reader.participant(p) for p in page], "next_cursor": next_cursor}


@blp.route("/<uuid:participant_id>")
class ParticipantById(MethodView):
    @require_scope("participants:read")
    @blp.response(200, ParticipantOut)
    def get(self, participant_id: uuid.UUID) -> Any:
        """Read a participant registered by your organization, or referred to it."""
        caller = current_caller()
        participant = visibility.visible_participant(db.session, caller, participant_id)
        view = visibility.Reader(db.session, caller, pseudonym_key()).participant(participant)
        return _with_etag(view, participant.version)

    @require_scope("participants:write")
    @blp.arguments(ParticipantCorrection(partial=True))
    @blp.response(200, ParticipantOut)
    def patch(self, body: dict[str, Any], participant_id: uuid.UUID) -> Any:
        """Correct a participant your organization registered (a typo, a new phone).

        Send only the fields to change (`null` clears an optional one). With `If-Match` and
        the ETag you read, a change made since is refused (412). The organizations that
        received the person get `participant.updated`, naming the fields changed (never
        their values), and read the person again. Only the registering organization corrects:
        another one gets 404."""
        caller = current_caller()
        allow_duplicate = body.pop("allow_duplicate", False)
        participant = correction.correct_participant(
            db.session, caller, participant_id, body, expected_version=expected_version(),
            allow_duplicate=allow_duplicate)
        view = visibility.Reader(db.session, caller, pseudonym_key()).participant(participant)
        return _with_etag(view, participant.version)


@blp.route("/<uuid:participant_id>/export")
class ParticipantCopy(MethodView):
    @require_scope("participants:read")
    @blp.response(200, description="The person's copy (JSON, `Content-Disposition: "
                  "attachment`).")
    def get(self, participant_id: uuid.UUID) -> Response:
        """The person's copy: everything collected from a participant your organization
        registered — identity, consents, legs as you see them, notes, check-in answers — as
        JSON to hand over on request (Law 25).  The read is in the access log."""
        document = person_copy.person_copy(db.session, current_caller(), participant_id,
                                           pseudonym_key())
        response = jsonify(document)
        response.headers["Content-Disposition"] = (
            f'attachment; filename="participant-{participant_id}.json"')
        return response


@blp.route("/<uuid:participant_id>/erase")
class EraseParticipant(MethodView):
    @require_scope("participants:write")
    @blp.response(200, ErasureOut)
    def post(self, participant_id: uuid.UUID) -> dict[str, Any]:
        """Erase a participant your organization registered, at their request (Law 25).

        Their active consents end and their open legs are cancelled (recipients are told as
        for a withdrawal); names, contacts, the legs' reasons and needs and every note are
        emptied; their own key is destroyed, so no backup can show them again. The legs and
        events stay, under a pseudonymous stub; every organization that received the data
        gets `participant.erased`. Erasing again answers the same."""
        caller = current_caller()
        participant = consents.own_participant(db.session, caller, participant_id)
        done = erasure.erase(db.session, participant, reason=erasure.Reason.ON_REQUEST,
                             actor=caller.actor, caller=caller, key=pseudonym_key())
        return erasure.as_dict(done)
