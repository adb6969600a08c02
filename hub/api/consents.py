"""Consents (docs/design.md §5): record, read, withdraw; and the participant's privacy exports
(consent history and access log, as JSON or CSV)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response, url_for
from flask.views import MethodView
from marshmallow import RAISE, Schema, fields, validate

from hub.adapters.oauth import current_caller, current_client_id, require_scope
from hub.api.common import (
    Blueprint,
    Input,
    PageArgs,
    Timestamp,
    aware_datetime,
    bounded_int,
    csv_download,
    cursor_after,
    page_of,
    retrying,
)
from hub.api.idempotency import idempotent
from hub.api.openapi import CSV_CONTENT
from hub.consent import access_log, consents, withdrawal
from hub.db import db, iso_utc

blp = Blueprint(
    "consents", __name__, url_prefix="/api/v1",
    description="Participants' consents, their withdrawal, and the privacy exports.",
)


class ConsentIn(Input):
    purpose = fields.String(required=True, validate=validate.OneOf(list(consents.Purpose)))
    organization_ids = fields.List(
        fields.UUID(), validate=validate.Length(max=500),
        metadata={"description": "The organizations the participant agrees to; or use "
                  "`network_wide`."},
    )
    network_wide = fields.Boolean(load_default=False)
    share_details = fields.Boolean(
        load_default=False,
        metadata={"description": "referral_sharing only: employers and insertion enterprises "
                  "also read the reason for referral, the needs and the notes; without it they "
                  "receive names and contact channels only."})
    evidence = fields.String(required=True, validate=validate.OneOf(list(consents.Evidence)),
                             metadata={"description": "How the consent was given."})
    expires_at = Timestamp(allow_none=True, load_default=None,
                           metadata={"description": "Default: 12 months after it is recorded."})
    note = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))


class ConsentOut(Schema):
    id = fields.UUID()
    participant_id = fields.UUID()
    purpose = fields.String()
    organization_ids = fields.List(fields.UUID())
    network_wide = fields.Boolean()
    share_details = fields.Boolean()
    evidence = fields.String()
    status = fields.String(metadata={"enum": list(consents.ConsentStatus)})
    recorded_by = fields.String()
    granted_at = Timestamp()
    expires_at = Timestamp()
    withdrawn_at = Timestamp(allow_none=True)
    expired_at = Timestamp(allow_none=True)


class ConsentPage(Schema):
    items = fields.List(fields.Nested(ConsentOut))
    next_cursor = fields.String(allow_none=True)


class ExportArgs(PageArgs):
    format = fields.String(
        load_default="json", validate=validate.OneOf(["json", "csv"]),
        metadata={"description": "`csv`: the whole history at once, as a spreadsheet file "
                  "(`limit` and `cursor` do not apply)."},
    )


class AccessOut(Schema):
    id = fields.Integer()
    participant_id = fields.UUID()
    organization_id = fields.UUID()
    actor = fields.String(metadata={"description": "The client or user that read."})
    via = fields.String(metadata={"description": "The endpoint, page or delivery."})
    read_at = Timestamp()


class AccessPage(Schema):
    items = fields.List(fields.Nested(AccessOut))
    next_cursor = fields.String(allow_none=True)


CONSENT_COLUMNS = ("id", "participant_id", "purpose", "organization_ids", "network_wide",
                   "evidence", "status", "recorded_by", "granted_at", "expires_at",
                   "withdrawn_at", "expired_at")
ACCESS_COLUMNS = ("id", "participant_id", "organization_id", "actor", "via", "read_at")


def _csv(filename: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Response:
    return csv_download(filename, columns, (
        [" ".join(value) if isinstance(value, list) else value
         for value in (row.get(name) for name in columns)] for row in rows))


@blp.route("/participants/<uuid:participant_id>/consents")
class ParticipantConsents(MethodView):
    @require_scope("consents:write")
    @idempotent(current_client_id)
    @blp.arguments(ConsentIn)
    @blp.response(201, ConsentOut)
    def post(self, body: dict[str, Any], participant_id: uuid.UUID) -> Any:
        """Record a participant's consent (your organization's participants only)."""
        granted = consents.grant(db.session, current_caller(), participant_id, **body)
        location = url_for("consents.ConsentById", consent_id=granted.id)
        return consents.snapshot(granted), 201, {"Location": location}

    @require_scope("consents:read")
    @blp.arguments(ExportArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, ConsentPage)
    @blp.doc(responses={"200": {"description": "JSON, or CSV with `format=csv`.", "content": {
        "application/json": {"schema": ConsentPage}, **CSV_CONTENT}}})
    def get(self, participant_id: uuid.UUID, limit: int, cursor: str | None,
            format: str) -> Any:
        """The participant's consent history, oldest first: active, withdrawn and expired."""
        consents.own_participant(db.session, current_caller(), participant_id)
        if format == "csv":
            rows = [consents.snapshot(c) for c in consents.history(db.session, participant_id)]
            return _csv(f"consents-{participant_id}.csv", CONSENT_COLUMNS, rows)
        after = cursor_after(cursor, aware_datetime, uuid.UUID)
        found = consents.history(db.session, participant_id, after=after, limit=limit + 1)
        page, next_cursor = page_of(found, limit, lambda c: (c.granted_at.isoformat(), c.id))
        return {"items": [consents.snapshot(c) for c in page], "next_cursor": next_cursor}


@blp.route("/consents/<uuid:consent_id>")
class ConsentById(MethodView):
    @require_scope("consents:read")
    @blp.response(200, ConsentOut)
    def get(self, consent_id: uuid.UUID) -> dict[str, Any]:
        """One consent of a participant of your organization."""
        return consents.snapshot(consents.visible_consent(db.session, current_caller(), consent_id))


@blp.route("/consents/<uuid:consent_id>/withdraw")
class WithdrawConsent(MethodView):
    @require_scope("consents:write")
    @blp.response(200, ConsentOut)
    def post(self, consent_id: uuid.UUID) -> dict[str, Any]:
        """Withdraw a consent, effective at once.

        Open legs to organizations no longer covered are cancelled (reason
        `consent_withdrawn`); the organizations that received the participant's data get a
        `consent.withdrawn` event and from then on see only opaque ids. Withdrawing again
        answers the same; an expired consent gets 409.
        """
        caller = current_caller()
        withdrawn = retrying(lambda: withdrawal.withdraw(db.session, caller, consent_id))
        return consents.snapshot(withdrawn)


def _access_row(read: access_log.PersonalDataRead) -> dict[str, Any]:
    return {"id": read.id, "participant_id": str(read.participant_id),
            "organization_id": str(read.organization_id), "actor": read.actor,
            "via": read.via, "read_at": iso_utc(read.read_at)}


@blp.route("/participants/<uuid:participant_id>/access-log")
class AccessLog(MethodView):
    @require_scope("consents:read")
    @blp.arguments(ExportArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, AccessPage)
    @blp.doc(responses={"200": {"description": "JSON, or CSV with `format=csv`.", "content": {
        "application/json": {"schema": AccessPage}, **CSV_CONTENT}}})
    def get(self, participant_id: uuid.UUID, limit: int, cursor: str | None,
            format: str) -> Any:
        """Every read of the participant's personal data: who, which organization, when, and
        through which endpoint, page or webhook delivery (your organization's participants)."""
        consents.own_participant(db.session, current_caller(), participant_id)
        if format == "csv":
            rows = [_access_row(r) for r in access_log.reads_of(db.session, participant_id)]
            return _csv(f"access-log-{participant_id}.csv", ACCESS_COLUMNS, rows)
        after = cursor_after(cursor, bounded_int)
        found = access_log.reads_of(db.session, participant_id, after=after, limit=limit + 1)
        page, next_cursor = page_of(found, limit, lambda r: (r.id,))
        return {"items": [_access_row(r) for r in page], "next_cursor": next_cursor}

