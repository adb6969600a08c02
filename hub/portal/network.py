"""The coordinator's dashboard: handoffs stalled past a deadline across the network (how late,
which organization, who to call), and the same list as CSV.  No participant personal data:
a pseudonymous reference only (`hub.consent.visibility.pseudonym`)."""

from __future__ import annotations

import uuid

from flask import Response
from flask_babel import gettext as _

from hub.accounts.users import MONITORING_ROLES
from hub.api.common import aware_datetime, csv_download, pseudonym_key
from hub.db import db, utcnow
from hub.portal import paging
from hub.portal.common import login_required, page, portal_blueprint
from hub.referrals.stalled import stalled_handoffs

blp = portal_blueprint("network", __name__)

CSV_ROWS = 10_000


@blp.get("/network/stalled")
@login_required(MONITORING_ROLES)
def stalled() -> Response:
    """A page of stalled handoffs, the longest overdue first; `after` moves on from the
    previous page's last row (due time, leg) along the deadline indexes."""
    after = paging.position(aware_datetime, uuid.UUID)
    found = stalled_handoffs(db.session, utcnow(), pseudonym_key(), limit=paging.PAGE_SIZE + 1,
                             after=after)
    handoffs, next_page = paging.cut(found, lambda item: (item["due_at"], item["referral_id"]))
    return page("portal/stalled.html", handoffs=handoffs, next_page=next_page,
                first_page=paging.first_page())


@blp.get("/network/stalled.csv")
@login_required(MONITORING_ROLES)
def stalled_csv() -> Response:
    handoffs = stalled_handoffs(db.session, utcnow(), pseudonym_key(), limit=CSV_ROWS)
    return csv_download(
        _("stalled-handoffs") + f"-{utcnow():%Y-%m-%d}.csv",
        ["referral_id", "participant_reference", "status", "pathway", "priority", "check",
         "due_at", "late_hours", "from_organization", "to_organization", "to_region",
         "receiver_on_time_share"],
        ([item["referral_id"], item["participant_reference"], item["status"], item["pathway"],
          item["priority"], item["check"], item["due_at"].isoformat(), item["late_hours"],
          item["from_organization"].name, item["to_organization"].name,
          item["to_organization"].region, item["receiver_on_time"]["share"] or ""]
         for item in handoffs))

