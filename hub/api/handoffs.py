"""Coordinators' view of the network: handoffs stalled past a deadline (DESIGN §4, §6)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields
from sqlalchemy import case, func, select, tuple_
from sqlalchemy.orm import Session, defer, lazyload

from hub.adapters.oauth import current_caller, require_scope
from hub.api.common import (
    PageArgs,
    Timestamp,
    aware_datetime,
    decode_cursor,
    encode_cursor,
    pseudonym_key,
)
from hub.consent.visibility import pseudonym
from hub.db import db, utcnow
from hub.directory.organizations import Organization
from hub.errors import NotAllowed
from hub.referrals.legs import Referral

blp = Blueprint(
    "handoffs", __name__, url_prefix="/api/v1/handoffs",
    description="Coordinators: the network's handoffs that need a phone call.",
)

ON_TIME_WINDOW = timedelta(days=180)

# The deadline that applies in each open status (column `<check>_by`).
CHECK_OF_STATUS = {"sent": "acknowledge", "acknowledged": "decide", "accepted": "start"}


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


def _on_time(session: Session, organization_ids: set[uuid.UUID], now: datetime
             ) -> dict[uuid.UUID, dict]:
    rows = session.execute(
        select(Referral.to_organization_id, func.count(),
               func.sum(case((Referral.acknowledged_at <= Referral.acknowledge_by, 1), else_=0)))
        .where(Referral.to_organization_id.in_(organization_ids),
               Referral.acknowledged_at.is_not(None),
               Referral.created_at >= now - ON_TIME_WINDOW)
        .group_by(Referral.to_organization_id))
    found = {org: {"acknowledged": n, "on_time": int(ok or 0),
                   "share": round(int(ok or 0) / n, 3) if n else None}
             for org, n, ok in rows}
    return {org: found.get(org, {"acknowledged": 0, "on_time": 0, "share": None})
            for org in organization_ids}


def stalled_handoffs(session: Session, now: datetime, key: bytes, *, limit: int,
                     after: tuple[datetime, uuid.UUID] | list[Any] | None = None
                     ) -> list[dict[str, Any]]:
    """Open legs past their current deadline, the longest overdue first, from `after`
    (due_at, referral id); no personal data.  The API and the portal's dashboard show these."""
    # One query per status, each reading its partial index in deadline order, merged here:
    # no sort of every stalled leg of the network to show the first page.
    page: list[Referral] = []
    for status, column in (("sent", Referral.acknowledge_by),
                           ("acknowledged", Referral.decide_by),
                           ("accepted", Referral.start_by)):
        # Codes and references only: no participant, no free text (nothing to decrypt).
        query = select(Referral).options(
            lazyload(Referral.participant), defer(Referral.reason_for_referral),
            defer(Referral.needs)).where(Referral.status == status, column < now)
        if after:
            due_at, last_id = after
            query = query.where(tuple_(column, Referral.id) > tuple_(due_at, last_id))
        page.extend(session.scalars(query.order_by(column, Referral.id).limit(limit)))
    page.sort(key=lambda leg: (getattr(leg, f"{CHECK_OF_STATUS[leg.status]}_by"), leg.id))
    del page[limit:]
    organization_ids = {leg.to_organization_id for leg in page} | {
        leg.from_organization_id for leg in page}
    organizations = {o.id: o for o in session.scalars(
        select(Organization).where(Organization.id.in_(organization_ids)))}
    on_time = _on_time(session, {leg.to_organization_id for leg in page}, now)
    items = []
    for leg in page:
        due = getattr(leg, f"{CHECK_OF_STATUS[leg.status]}_by")
        items.append({
            "referral_id": leg.id, "status": leg.status, "pathway": leg.pathway,
            "priority": leg.priority, "check": CHECK_OF_STATUS[leg.status], "due_at": due,
            "late_hours": round((now - due).total_seconds() / 3600, 1),
            "participant_reference": pseudonym(leg.participant_id, key),
            "from_organization": organizations[leg.from_organization_id],
            "to_organization": organizations[leg.to_organization_id],
            "receiver_on_time": on_time[leg.to_organization_id],
            "receiver_contacts": [],  # the directory holds no contacts yet
        })
    return items


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
        after = decode_cursor(cursor, aware_datetime, uuid.UUID) if cursor else None
        found = stalled_handoffs(db.session, utcnow(), pseudonym_key(), limit=limit + 1,
                                 after=after)
        items = found[:limit]
        next_cursor = None
        if len(found) > limit:
            next_cursor = encode_cursor(items[-1]["due_at"].isoformat(), items[-1]["referral_id"])
        return {"items": items, "next_cursor": next_cursor}
