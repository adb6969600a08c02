"""Loop closure (design §14): how well an organization closes the loop on the legs of a
period, as sender and as receiver, and for coordinators the whole network and its unmet
demand (declines for lack of room, per region and pathway).

The legs counted are those sent in the period [start, end).  For each set of legs:
- `legs`, and `closed` (in a terminal status);
- `closed_with_outcome`: completed with an outcome code (what the sender needs to know what
  became of the person), and its share of `legs`;
- `median_hours_to_acknowledge`: from sent to acknowledged;
- `median_hours_to_decide`: from acknowledged (or sent, for a leg declined without an
  acknowledgement) to accepted or declined;
- `answered_on_time`: legs whose first answer (acknowledgement, or a decline or forward
  straight from `sent`) came by the acknowledgement deadline, and its share of the legs
  whose deadline has passed or that were answered (a leg still within its deadline is not
  yet late, nor on time).
Shares and medians are None when nothing counts towards them.

These are figures about an organization's handling of legs, which each party already sees
leg by leg; no participant is counted or named (no consent is read, unlike the funder
reports of `hub.referrals.reports`).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.directory.organizations import Organization
from hub.referrals import lifecycle
from hub.referrals.legs import Referral
from hub.referrals.reports import median

TERMINAL = {status.value for status in lifecycle.TERMINAL}
# Statuses a leg reaches by being answered straight from `sent`, without an acknowledgement.
ANSWERED_FROM_SENT = {lifecycle.Status.DECLINED.value, lifecycle.Status.FORWARDED.value}

# The columns read: no participant, no free text.
_COLUMNS = (Referral.from_organization_id, Referral.to_organization_id, Referral.pathway,
            Referral.status, Referral.outcome, Referral.decline_reason, Referral.created_at,
            Referral.acknowledged_at, Referral.accepted_at, Referral.closed_at,
            Referral.acknowledge_by)


def _hours(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds() / 3600, 1)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def figures(legs: Iterable[Any], now: datetime) -> dict[str, Any]:
    """The loop-closure figures of these legs (rows of `_COLUMNS`)."""
    rows = list(legs)
    closed = [leg for leg in rows if leg.status in TERMINAL]
    with_outcome = [leg for leg in closed if leg.status == lifecycle.Status.COMPLETED.value
                    and leg.outcome]
    to_acknowledge = [_hours(leg.acknowledged_at, leg.created_at) for leg in rows
                      if leg.acknowledged_at is not None]
    to_decide = []
    answered, due, on_time = 0, 0, 0
    for leg in rows:
        decided_at = leg.accepted_at or (
            leg.closed_at if leg.status == lifecycle.Status.DECLINED.value else None)
        if decided_at is not None:
            to_decide.append(_hours(decided_at, leg.acknowledged_at or leg.created_at))
        first_answer = leg.acknowledged_at or (
            leg.closed_at if leg.status in ANSWERED_FROM_SENT else None)
        if first_answer is not None:
            answered += 1
        if first_answer is not None or (leg.acknowledge_by is not None
                                        and leg.acknowledge_by <= now):
            due += 1
            if first_answer is not None and leg.acknowledge_by is not None \
                    and first_answer <= leg.acknowledge_by:
                on_time += 1
    return {
        "legs": len(rows),
        "closed": len(closed),
        "closed_with_outcome": len(with_outcome),
        "share_closed_with_outcome": _share(len(with_outcome), len(rows)),
        "median_hours_to_acknowledge": median(to_acknowledge),
        "median_hours_to_decide": median(to_decide),
        "answered": answered,
        "answered_on_time": on_time,
        "share_answered_on_time": _share(on_time, due),
    }


def _legs(session: Session, start: datetime, end: datetime, *conditions: Any) -> list[Any]:
    return list(session.execute(select(*_COLUMNS).where(
        Referral.created_at >= start, Referral.created_at < end, *conditions)))


def organization_report(session: Session, organization_id: uuid.UUID, start: datetime,
                        end: datetime, now: datetime) -> dict[str, Any]:
    """One organization about itself: the legs it sent and the legs it received."""
    return {
        "as_sender": figures(_legs(session, start, end,
                                   Referral.from_organization_id == organization_id), now),
        "as_receiver": figures(_legs(session, start, end,
                                     Referral.to_organization_id == organization_id), now),
    }


def network_report(session: Session, start: datetime, end: datetime, now: datetime
                   ) -> dict[str, Any]:
    """For coordinators: every leg of the network, and the unmet demand."""
    legs = _legs(session, start, end)
    return {"network": figures(legs, now), "unmet_demand": unmet_demand(session, legs)}


def unmet_demand(session: Session, legs: list[Any]) -> list[dict[str, Any]]:
    """Declines for lack of room per receiving organization's region and pathway, most first:
    where counsellors found no partner with room."""
    full = [leg for leg in legs
            if leg.decline_reason == lifecycle.DeclineReason.NO_CAPACITY.value]
    if not full:
        return []
    regions = dict(session.execute(select(Organization.id, Organization.region).where(
        Organization.id.in_({leg.to_organization_id for leg in full}))).all())
    counted = Counter((regions.get(leg.to_organization_id, ""), leg.pathway) for leg in full)
    return [{"region": region, "pathway": pathway, "declines_for_capacity": count}
            for (region, pathway), count in sorted(counted.items(),
                                                   key=lambda item: (-item[1], item[0]))]


FIGURES = ("legs", "closed", "closed_with_outcome", "share_closed_with_outcome",
           "median_hours_to_acknowledge", "median_hours_to_decide", "answered",
           "answered_on_time", "share_answered_on_time")
# One table for a spreadsheet: a row per set of legs (`as_sender`, `as_receiver`, `network`),
# then a row per region and pathway of the unmet demand (section `unmet_demand`).
CSV_COLUMNS = ("section", "region", "pathway", *FIGURES, "declines_for_capacity")


def csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The report (as `hub.api.reports.loop_closure_report` gives it) as the values of
    `CSV_COLUMNS`; a share or median that nothing counts towards is empty."""
    rows = [{"section": section, **report[section]}
            for section in ("as_sender", "as_receiver", "network") if section in report]
    rows += [{"section": "unmet_demand", **row} for row in report.get("unmet_demand", [])]
    return [[row.get(name) for name in CSV_COLUMNS] for row in rows]
