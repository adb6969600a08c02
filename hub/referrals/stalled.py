"""Stalled handoffs: open legs past their current deadline across the network, the longest
overdue first, for coordinators (docs/design.md §4, §6).  Codes, organizations and a pseudonymous
participant reference only: no personal data.  The API (`hub.api.handoffs`) and the portal's
dashboard (`hub.portal.network`) show the same list.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, tuple_
from sqlalchemy.orm import Session, defer, lazyload

from hub.consent.visibility import pseudonym
from hub.directory.organizations import Contact, Organization
from hub.referrals.legs import Referral

ON_TIME_WINDOW = timedelta(days=180)


# The deadline that applies in each open status (column `<check>_by`).
CHECK_OF_STATUS = {"sent": "acknowledge", "acknowledged": "decide", "accepted": "start"}


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


def _contacts(session: Session, organization_ids: set[uuid.UUID]
              ) -> dict[uuid.UUID, list[dict[str, str | None]]]:
    """Who to call at each organization: the contacts of its directory entry (roles of the
    organization, not participants' data), in one query for the page."""
    found: dict[uuid.UUID, list[dict[str, str | None]]] = {}
    if not organization_ids:
        return found
    for contact in session.scalars(select(Contact).where(
            Contact.organization_id.in_(organization_ids)).order_by(Contact.name, Contact.id)):
        found.setdefault(contact.organization_id, []).append({
            "name": contact.name, "role": contact.role, "email": contact.email,
            "phone": contact.phone, "preferred_channel": contact.preferred_channel})
    return found


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
    contacts = _contacts(session, {leg.to_organization_id for leg in page})
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
            "receiver_contacts": contacts.get(leg.to_organization_id, []),
        })
    return items

