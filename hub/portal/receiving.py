"""The receiving partner's inbox: inbound legs, open ones by default, urgent first then newest,
overdue ones marked; each opens on its page with the actions of the moment (`hub.portal.legs`).
A user may ask to be mailed every new referral to the organization (`hub.mailbox.notices`)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select, tuple_
from sqlalchemy.orm import InstrumentedAttribute
from werkzeug import Response

from hub.accounts.users import RECEIVING_ROLES
from hub.api.common import aware_datetime, pseudonym_key
from hub.consent.visibility import Reader
from hub.db import db, utcnow
from hub.portal import paging
from hub.portal.common import caller, current_user, login_required, page, portal_blueprint
from hub.portal.legs import leg_rows
from hub.referrals.legs import Referral

blp = portal_blueprint("receiving", __name__)


@blp.get("/inbox")
@login_required(RECEIVING_ROLES)
def inbox() -> Response:
    """A page of inbound legs; `after` (the previous page's last row) moves on in keyset order,
    read along the index of open legs (`ix_referrals_open_inbox`)."""
    closed = request.args.get("closed") == "1"
    query = select(Referral).where(
        Referral.to_organization_id == caller().organization_id,
        Referral.closed_at.is_not(None) if closed else Referral.closed_at.is_(None))
    key: tuple[InstrumentedAttribute[Any], ...]
    if closed:
        key = (Referral.closed_at, Referral.id)
        after = paging.position(aware_datetime, uuid.UUID)
    else:
        # "urgent" sorts after "routine": descending puts urgent first, in the index's order.
        key = (Referral.priority, Referral.created_at, Referral.id)
        after = paging.position(str, aware_datetime, uuid.UUID)
    if after:
        query = query.where(tuple_(*key) < tuple_(*after))
    legs = list(db.session.scalars(
        query.order_by(*(column.desc() for column in key)).limit(paging.PAGE_SIZE + 1)))
    legs, next_page = paging.cut(legs, lambda leg: (
        (leg.closed_at, leg.id) if closed else (leg.priority, leg.created_at, leg.id)))
    rows = leg_rows(legs, utcnow(), Reader(db.session, caller(), pseudonym_key()))
    return page("portal/inbox.html", legs=rows, closed=closed, next_page=next_page,
                first_page=paging.first_page())


@blp.post("/inbox/notifications")
@login_required(RECEIVING_ROLES)
def notifications() -> Response:
    """Turn on or off the mail for every new referral to the user's organization, and the
    digest of its referrals that missed a deadline."""
    user = current_user()
    user.notify_referrals = request.form.get("notify_referrals") == "on"
    user.deadline_digests = request.form.get("deadline_digests") == "on"
    flash(_("You will get a mail for every new referral.") if user.notify_referrals
          else _("You will no longer get a mail for every new referral."), "success")
    flash(_("You will get the digest of referrals that missed a deadline.")
          if user.deadline_digests
          else _("You will not get the digest of referrals that missed a deadline."), "success")
    return redirect(url_for("receiving.inbox"))
