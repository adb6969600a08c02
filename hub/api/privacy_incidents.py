"""The organization's register of confidentiality incidents (docs/design.md §15): record, read,
correct, and the whole register as CSV.  Entries are never deleted through the API; the
database keeps each one at least five years."""

from __future__ import annotations

import uuid
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
    csv_download,
    cursor_after,
    page_of,
)
from hub.api.idempotency import idempotent
from hub.db import db
from hub.privacy import erasure, incidents

blp = Blueprint(
    "privacy_incidents", __name__, url_prefix="/api/v1/privacy-incidents",
    description="The register of confidentiality incidents the CAI expects, kept 5 years.",
)

TEXT = validate.Length(max=10_000)


class IncidentIn(Input):
    information_involved = fields.String(
        required=True, validate=validate.Length(1, 10_000),
        metadata={"description": "The personal information concerned (or why it is not known)."})
    circumstances = fields.String(
        required=True, validate=validate.Length(1, 10_000),
        metadata={"description": "What happened, and what caused it if known."})
    occurred_at = Timestamp(allow_none=True, load_default=None,
                            metadata={"description": "When it happened; null while unknown."})
    discovered_at = Timestamp(required=True,
                              metadata={"description": "When your organization learned of it."})
    people_affected = fields.Integer(allow_none=True, load_default=None,
                                     validate=validate.Range(0, 100_000_000),
                                     metadata={"description": "How many people; null if "
                                               "unknown."})
    risk_assessment = fields.String(allow_none=True, load_default=None, validate=TEXT,
                                    metadata={"description": "How the risk of serious injury "
                                              "was assessed."})
    serious_injury_risk = fields.Boolean(
        required=True,
        metadata={"description": "Whether it presents a risk of serious injury (the CAI and "
                  "the people concerned must then be told promptly)."})
    cai_notified_at = Timestamp(allow_none=True, load_default=None)
    people_notified_at = Timestamp(allow_none=True, load_default=None)
    measures_taken = fields.String(allow_none=True, load_default=None, validate=TEXT,
                                   metadata={"description": "What was done to reduce the risk "
                                             "and prevent another incident."})


class IncidentPatch(IncidentIn):
    """The same fields, each optional: what is sent changes, the rest stays (loaded partial,
    so no default applies to a field not sent)."""



class IncidentOut(Schema):
    id = fields.UUID()
    organization_id = fields.UUID()
    information_involved = fields.String()
    circumstances = fields.String()
    occurred_at = Timestamp(allow_none=True)
    discovered_at = Timestamp()
    people_affected = fields.Integer(allow_none=True)
    risk_assessment = fields.String(allow_none=True)
    serious_injury_risk = fields.Boolean()
    cai_notified_at = Timestamp(allow_none=True)
    people_notified_at = Timestamp(allow_none=True)
    measures_taken = fields.String(allow_none=True)
    recorded_at = Timestamp()
    recorded_by = fields.String()
    updated_at = Timestamp()
    updated_by = fields.String()
    kept_until = Timestamp(metadata={"description": "The entry cannot be deleted before."})


class IncidentPage(Schema):
    items = fields.List(fields.Nested(IncidentOut))
    next_cursor = fields.String(allow_none=True)


class RegisterArgs(PageArgs):
    format = fields.String(
        load_default="json", validate=validate.OneOf(["json", "csv"]),
        metadata={"description": "`csv`: the whole register at once, as a spreadsheet file "
                  "(`limit` and `cursor` do not apply)."},
    )


CSV_COLUMNS = ("id", *incidents.FIELDS, "recorded_at", "recorded_by", "updated_at",
               "updated_by", "kept_until")


def register_csv(entries: list[incidents.PrivacyIncident]) -> Response:
    """The register as the CSV file the API and the portal both offer."""
    rows = [incidents.as_dict(entry) for entry in entries]
    return csv_download("privacy-incidents.csv", CSV_COLUMNS,
                        ([row[c] for c in CSV_COLUMNS] for row in rows))


@blp.route("")
class Register(MethodView):
    @require_scope("privacy:manage")
    @blp.arguments(RegisterArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, IncidentPage)
    @blp.alt_response(200, content_type="text/csv", description="With `format=csv`.",
                      success=True)
    def get(self, limit: int, cursor: str | None, format: str) -> Any:
        """Your organization's register, the latest discovered first."""
        organization_id = current_caller().organization_id
        if format == "csv":
            return register_csv(incidents.register_of(db.session, organization_id))
        after = cursor_after(cursor, aware_datetime, uuid.UUID)
        found = incidents.register_of(db.session, organization_id, after=after,
                                      limit=limit + 1)
        page, next_cursor = page_of(found, limit, lambda i: (i.discovered_at.isoformat(), i.id))
        return {"items": [incidents.as_dict(i) for i in page], "next_cursor": next_cursor}

    @require_scope("privacy:manage")
    @idempotent(current_client_id)
    @blp.arguments(IncidentIn)
    @blp.response(201, IncidentOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Record a confidentiality incident in your organization's register."""
        caller = current_caller()
        incident = incidents.record_incident(db.session, caller.organization_id, caller.actor,
                                             **body)
        location = url_for("privacy_incidents.IncidentById", incident_id=incident.id)
        return incidents.as_dict(incident), 201, {"Location": location}


@blp.route("/<uuid:incident_id>")
class IncidentById(MethodView):
    @require_scope("privacy:manage")
    @blp.response(200, IncidentOut)
    def get(self, incident_id: uuid.UUID) -> dict[str, Any]:
        """One entry of your organization's register."""
        return incidents.as_dict(incidents.own_incident(
            db.session, current_caller().organization_id, incident_id))

    @require_scope("privacy:manage")
    @blp.arguments(IncidentPatch(partial=True))
    @blp.response(200, IncidentOut)
    def patch(self, body: dict[str, Any], incident_id: uuid.UUID) -> dict[str, Any]:
        """Complete or correct an entry: a notice sent, measures taken, a count now known."""
        caller = current_caller()
        incident = incidents.own_incident(db.session, caller.organization_id, incident_id)
        return incidents.as_dict(incidents.correct_incident(db.session, caller.actor, incident,
                                                            **body))


class ErasureOut(Schema):
    participant_id = fields.UUID()
    organization_id = fields.UUID()
    pseudonym = fields.String(metadata={"description": "The reference coordinators knew the "
                                        "person by; nothing else of them is kept."})
    reason = fields.String(metadata={"enum": list(erasure.Reason)})
    erased_by = fields.String()
    erased_at = Timestamp()


class ErasurePage(Schema):
    items = fields.List(fields.Nested(ErasureOut))
    next_cursor = fields.String(allow_none=True)


ERASURE_COLUMNS = ("participant_id", "pseudonym", "reason", "erased_by", "erased_at")


def erasures_csv(entries: list[erasure.ParticipantErasure]) -> Response:
    """The erasure register as the CSV file the API and the portal both offer."""
    rows = [erasure.as_dict(entry) for entry in entries]
    return csv_download("erasures.csv", ERASURE_COLUMNS,
                        ([row[c] for c in ERASURE_COLUMNS] for row in rows))


erasures_blp = Blueprint(
    "erasures", __name__, url_prefix="/api/v1/erasures",
    description="The register of the participants' data erased: when, which pseudonym, why.",
)


@erasures_blp.route("")
class ErasureRegister(MethodView):
    @require_scope("privacy:manage")
    @erasures_blp.arguments(RegisterArgs, location="query", unknown=RAISE, as_kwargs=True)
    @erasures_blp.response(200, ErasurePage)
    @erasures_blp.alt_response(200, content_type="text/csv", description="With `format=csv`.",
                               success=True)
    def get(self, limit: int, cursor: str | None, format: str) -> Any:
        """Your organization's erasure register, the latest first: on request and at the end
        of retention (`HUB_RETENTION_MONTHS`)."""
        organization_id = current_caller().organization_id
        if format == "csv":
            return erasures_csv(erasure.register_of(db.session, organization_id))
        after = cursor_after(cursor, aware_datetime, uuid.UUID)
        found = erasure.register_of(db.session, organization_id, after=after, limit=limit + 1)
        page, next_cursor = page_of(found, limit,
                                    lambda e: (e.erased_at.isoformat(), e.participant_id))
        return {"items": [erasure.as_dict(e) for e in page], "next_cursor": next_cursor}
