"""Funder reports: per organization and period, the counts a funder asks for, computed only
from participants whose `outcome_reporting` consent (DESIGN §5) covers that organization.

Legs count in the period they were sent (`created_at` in [start, end)).  Times to acknowledge
are calendar hours from sending to acknowledgement.  A leg is *due* once its acknowledgement
deadline has passed or it was acknowledged; it was answered *on time* when acknowledged by the
deadline.  Outcomes are those of completed legs, sent and received, by pathway.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from hub.consent import Consent, ConsentEnding, ConsentOrganization
from hub.referrals import Referral


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (`share` in 0..1) of `values`; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered, middle = sorted(values), len(values) // 2
    return ordered[middle] if len(values) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _counted_by(organization_id: Any, now: datetime) -> list[Any]:
    """The rule, on `Consent` rows: an active `outcome_reporting` consent naming
    `organization_id` (a value or a column), or the whole network."""
    named = exists().where(ConsentOrganization.consent_id == Consent.id,
                           ConsentOrganization.organization_id == organization_id)
    ended = exists().where(ConsentEnding.consent_id == Consent.id)
    return [Consent.purpose == "outcome_reporting", ~ended, Consent.expires_at > now,
            or_(Consent.network_wide, named)]


def consenting_participants(session: Session, organization_id: uuid.UUID,
                            participant_ids: Iterable[uuid.UUID], now: datetime
                            ) -> set[uuid.UUID]:
    """Which of these participants may be counted in `organization_id`'s reports now."""
    wanted = list(set(participant_ids))
    found: set[uuid.UUID] = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists
        found.update(session.scalars(select(Consent.participant_id).where(
            Consent.participant_id.in_(wanted[start:start + 500]),
            *_counted_by(organization_id, now))))
    return found


def _hours(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds() / 3600, 2)


def funder_report(session: Session, organization_id: uuid.UUID, start: datetime,
                  end: datetime, now: datetime) -> dict[str, Any]:
    legs = list(session.scalars(select(Referral).where(
        or_(Referral.from_organization_id == organization_id,
            Referral.to_organization_id == organization_id),
        Referral.created_at >= start, Referral.created_at < end)))
    counted = consenting_participants(session, organization_id,
                                      (leg.participant_id for leg in legs), now)
    kept = [leg for leg in legs if leg.participant_id in counted]
    sent = [leg for leg in kept if leg.from_organization_id == organization_id]
    received = [leg for leg in kept if leg.to_organization_id == organization_id]

    delays = [_hours(leg.acknowledged_at, leg.created_at) for leg in received
              if leg.acknowledged_at is not None]
    due = [leg for leg in received if leg.acknowledged_at is not None or (
        leg.acknowledge_by is not None and leg.acknowledge_by <= now)]
    on_time = [leg for leg in due if leg.acknowledged_at is not None and (
        leg.acknowledge_by is None or leg.acknowledged_at <= leg.acknowledge_by)]

    def outcomes(of: list[Referral]) -> dict[str, dict[str, int]]:
        by_pathway: dict[str, Counter[str]] = defaultdict(Counter)
        for leg in of:
            if leg.outcome:
                by_pathway[leg.pathway][leg.outcome] += 1
        return {pathway: dict(sorted(c.items())) for pathway, c in sorted(by_pathway.items())}

    def by_pathway(of: list[Referral]) -> dict[str, int]:
        return dict(sorted(Counter(leg.pathway for leg in of).items()))

    return {
        "organization_id": str(organization_id),
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "participants_counted": len(counted),
        "legs_left_out_without_consent": len(legs) - len(kept),
        "sent": {"total": len(sent), "by_pathway": by_pathway(sent)},
        "received": {"total": len(received), "by_pathway": by_pathway(received)},
        "acknowledgement": {
            "acknowledged": len(delays),
            "median_hours": median(delays),
            "p90_hours": percentile(delays, 0.9),
            "due": len(due),
            "answered_on_time": len(on_time),
            "share_answered_on_time": round(len(on_time) / len(due), 4) if due else None,
        },
        "outcomes": {"sent": outcomes(sent), "received": outcomes(received)},
    }


CSV_COLUMNS = ("section", "direction", "pathway", "outcome", "value")


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report as long-format rows for a spreadsheet (one figure per row)."""
    rows: list[dict[str, Any]] = [
        {"section": "participants_counted", "value": report["participants_counted"]},
        {"section": "legs_left_out_without_consent",
         "value": report["legs_left_out_without_consent"]},
    ]
    for direction in ("sent", "received"):
        rows.append({"section": "referrals", "direction": direction, "pathway": "all",
                     "value": report[direction]["total"]})
        rows += [{"section": "referrals", "direction": direction, "pathway": pathway,
                  "value": count} for pathway, count in report[direction]["by_pathway"].items()]
    rows += [{"section": f"acknowledgement_{name}", "direction": "received", "value": value}
             for name, value in report["acknowledgement"].items()]
    for direction, by_pathway in report["outcomes"].items():
        rows += [{"section": "outcomes", "direction": direction, "pathway": pathway,
                  "outcome": outcome, "value": count}
                 for pathway, counts in by_pathway.items() for outcome, count in counts.items()]
    return rows


# --- the network as coordinators see it (no participant, no personal data) ------------------

def acknowledgement_by_receiver(session: Session, start: datetime, end: datetime
                                ) -> list[dict[str, Any]]:
    """Per receiving organization, hours from sending to acknowledgement of the legs sent in
    [start, end) and acknowledged: count, median and 90th percentile, slowest median first.

    How fast an organization answers is about the organization, not the person: every leg
    counts, as in the coordinators' on-time record (`hub.api.handoffs`)."""
    delays: dict[uuid.UUID, list[float]] = defaultdict(list)
    for receiver, created_at, acknowledged_at in session.execute(
            select(Referral.to_organization_id, Referral.created_at, Referral.acknowledged_at)
            .where(Referral.created_at >= start, Referral.created_at < end,
                   Referral.acknowledged_at.is_not(None))):
        delays[receiver].append(_hours(acknowledged_at, created_at))
    rows = [{"organization_id": receiver, "acknowledged": len(hours),
             "median_hours": median(hours), "p90_hours": percentile(hours, 0.9)}
            for receiver, hours in delays.items()]
    return sorted(rows, key=lambda row: (-row["median_hours"], str(row["organization_id"])))


def outcomes_by_pathway(session: Session, start: datetime, end: datetime, now: datetime
                        ) -> dict[str, Any]:
    """Outcomes of the legs sent in [start, end) and completed, by pathway, counting only
    participants whose `outcome_reporting` consent covers the receiving organization (the
    rule of the funder reports, applied leg by leg)."""
    counted = exists().where(Consent.participant_id == Referral.participant_id,
                             *_counted_by(Referral.to_organization_id, now))
    period = (Referral.created_at >= start, Referral.created_at < end,
              Referral.outcome.is_not(None))
    by_pathway: dict[str, dict[str, int]] = defaultdict(dict)
    kept = 0
    for pathway, outcome, count in session.execute(
            select(Referral.pathway, Referral.outcome, func.count())
            .where(*period, counted).group_by(Referral.pathway, Referral.outcome)
            .order_by(Referral.pathway, Referral.outcome)):
        by_pathway[pathway][outcome] = count
        kept += count
    completed = session.scalar(select(func.count()).select_from(Referral).where(*period)) or 0
    return {"by_pathway": dict(by_pathway), "counted": kept,
            "left_out_without_consent": completed - kept}
