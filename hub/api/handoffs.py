"""Coordinators' view of the network: handoffs stalled past a deadline (docs/design.md §4, §6)."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from marshmallow import RAISE, Schema, fields

from hub.adapters.oauth import current_caller, require_scope
from hub.api.common import (
    Blueprint,
    PageArgs,
    Timestamp,
    aware_datetime,
    cursor_after,
    page_of,
    pseudonym_key,
)
from hub.db import db, utcnow
from hub.errors import NotAllowed
from hub.referrals.stalled import stalled_handoffs

blp = Blueprint(
    "handoffs", __name__, url_prefix="/api/v1/handoffs",
    description="Coordinators: the network's handoffs that need a phone call.",
)


class OrganizationBrief(Schema):
    id = fields.UUID()
    name = fields.String()
    region = fields.String()


class OnTimeRecord(Schema):
    acknowledged = fields.Integer(metadata={"description": "Legs acknowledged in 180 days."})
    on_time = fields.Integer()
    share = fields.Float(allow_none=True)


class StalledHandoff(Schema):
    referral_id = fields.UUID()
    status = fields.String()
    pathway = fields.String()
    priority = fields.String()
    check = fields.String(metadata={"description": "acknowledge, decide or start"})
    due_at = Timestamp()
    late_hours = fields.Float()
    participant_reference = fields.String()
    from_organization = fields.Nested(OrganizationBrief)
    to_organization = fields.Nested(OrganizationBrief)
    receiver_on_time = fields.Nested(OnTimeRecord)
    receiver_contacts = fields.List(fields.Dict(), metadata={
        "description": "Who to call at the receiving organization (from its directory entry)."})


class StalledPage(Schema):
    items = fields.List(fields.Nested(StalledHandoff))
    next_cursor = fields.String(allow_none=True)


@blp.route("/stalled")
class Stalled(MethodView):
    @require_scope("network:monitor")
    @blp.arguments(PageArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, StalledPage)
    def get(self, limit: int, cursor: str | None) -> dict[str, Any]:
        """Open legs past their current deadline, the longest overdue first; no personal data
        (a pseudonymous participant reference)."""
        if not current_caller().is_coordinator:
            raise NotAllowed("Only coordination bodies watch the network's handoffs.")
        after = cursor_after(cursor, aware_datetime, uuid.UUID)
        found = stalled_handoffs(db.session, utcnow(), pseudonym_key(), limit=limit + 1,
                                 after=after)
        items, next_cursor = page_of(found, limit,
                                     lambda leg: (leg["due_at"].isoformat(), leg["referral_id"]))
        return {"items": items, "next_cursor": next_cursor}
