"""The receiving partner's inbox: inbound legs, open ones by default, urgent first then newest,
overdue ones marked; each opens on its page with the actions of the moment (`hub.web.legs`)."""

from __future__ import annotations

from flask import request
from sqlalchemy import select
from werkzeug import Response

from hub.api.common import pseudonym_key
from hub.db import db, utcnow
from hub.referrals import Referral
from hub.users import RECEIVING_ROLES
from hub.visibility import Reader
from hub.web.legs import leg_rows
from hub.web.portal import caller, login_required, page, portal_blueprint

blp = portal_blueprint("receiving", __name__)

INBOX_SHOWN = 100


@blp.get("/inbox")
@login_required(RECEIVING_ROLES)
def inbox() -> Response:
    closed = request.args.get("closed") == "1"
    query = select(Referral).where(
        Referral.to_organization_id == caller().organization_id,
        Referral.closed_at.is_not(None) if closed else Referral.closed_at.is_(None))
    # "urgent" sorts after "routine": descending puts urgent first, in the index's order.
    order = ((Referral.closed_at.desc(),) if closed
             else (Referral.priority.desc(), Referral.created_at.desc()))
    legs = list(db.session.scalars(query.order_by(*order).limit(INBOX_SHOWN)))
    rows = leg_rows(legs, utcnow(), Reader(db.session, caller(), pseudonym_key()))
    return page("portal/inbox.html", legs=rows, closed=closed)
