"""The counsellor's follow-ups after the handoff (docs/design.md §10): the "To follow up" list
(its count in the menu) and the form on a completed leg's page that records a call, carried
out by `hub.followups.records.record_followup` like the API's."""

from __future__ import annotations

import uuid
from typing import Any

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug import Response

from hub.accounts.users import SENDING_ROLES
from hub.api.common import aware_datetime, pseudonym_key
from hub.api.followups import FollowUpIn
from hub.consent.visibility import Reader
from hub.db import db
from hub.errors import DomainError
from hub.followups import records
from hub.portal import forms, paging
from hub.portal.common import caller, login_required, message_of, page, portal_blueprint, status_of
from hub.portal.legs import leg_page, organization_names

blp = portal_blueprint("follow_up", __name__)


@blp.app_context_processor
def _due_count() -> dict[str, Any]:
    """How many follow-ups wait for the counsellor's organization, for the menu: asked only
    when a page shows the menu to someone who sends referrals."""
    def count() -> int:
        user = g.get("user")
        if user is None or user.role not in SENDING_ROLES:
            return 0
        return records.count_due(db.session, user.caller)

    return {"followups_due": count}


@blp.get("/followups")
@login_required(SENDING_ROLES)
def due() -> Response:
    """The legs the organization sent whose follow-up came due, oldest first."""
    after = paging.position(aware_datetime, uuid.UUID)
    found = records.due_followups(db.session, caller(), limit=paging.PAGE_SIZE + 1,
                                  after=(after[0], after[1]) if after else None)
    shown, next_page = paging.cut(found, lambda item: (item.due_at.isoformat(),
                                                       item.referral.id))
    reader = Reader(db.session, caller(), pseudonym_key())
    reader.entitle_page([item.referral for item in shown])
    names = organization_names({item.referral.to_organization_id for item in shown})
    rows = [{"referral_id": item.referral.id, "due": item.due, "due_at": item.due_at,
             "pathway": item.referral.pathway,
             "to": names.get(item.referral.to_organization_id, ""),
             "participant": reader.participant(item.referral.participant)} for item in shown]
    return page("portal/followups.html", rows=rows, next_page=next_page,
                first_page=url_for("follow_up.due") if after else None)


@blp.post("/legs/<uuid:referral_id>/followups")
@login_required(SENDING_ROLES)
def record(referral_id: uuid.UUID) -> Response:
    """Record a follow-up; a refusal shows the leg again with what was typed and what to fix."""
    data, bad = forms.load(FollowUpIn(), request.form)
    if data is None:
        return leg_page(referral_id, 422, _("Check the fields marked below."),
                        followup_values=request.form, followup_bad=bad)
    try:
        records.record_followup(db.session, caller(), referral_id, **data)
    except DomainError as error:
        db.session.rollback()
        return leg_page(referral_id, status_of(error), message_of(error),
                        followup_values=request.form)
    flash(_("Follow-up recorded."), "success")
    return redirect(url_for("legs.detail", referral_id=referral_id))
