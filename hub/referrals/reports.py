"""Funder reports: per organization and period, the counts a funder asks for, computed only
from participants whose `outcome_reporting` consent (docs/design.md §5) covers that organization.

Legs count in the period they were sent (`created_at` in [start, end)).  Times to acknowledge
are calendar hours from sending to acknowledgement.  A leg is *due* once its acknowledgement
deadline has passed or it was acknowledged; it was answered *on time* when acknowledged by the
deadline.  Outcomes are those of completed legs, sent and received, by pathway.

Small counts are withheld (`suppress_small_counts`): in a small region, "1 participant
referred for entrepreneurship whose business started" points at one person, whom the
organization's funder or a neighbour may recognise.  A count from 1 to `min_cell` - 1 is
withheld (null, and named in `suppression.suppressed`), so is a median, percentile or share
computed from fewer than `min_cell` legs, and so is one more cell of a list whose total is
shown, so that the withheld cell cannot be recovered by subtraction.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from hub.consent.consents import Consent, ConsentEnding, ConsentOrganization
from hub.directory.organizations import Organization
from hub.followups.records import FollowUpRecord
from hub.referrals.households import households_among
from hub.referrals.legs import Referral


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
                  end: datetime, now: datetime, *, min_cell: int = 1) -> dict[str, Any]:
    """The report of one organization for [start, end).  Whatever is shown outside the
    organization (the API, a funder, a coordinator's chart) passes `min_cell` (the setting
    `HUB_REPORT_MIN_CELL`); the default 1 withholds nothing."""
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

    return suppress_small_counts({
        "organization_id": str(organization_id),
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "participants_counted": len(counted),
        # Families move together (§12): a household counts once, a person alone as one.
        "households_counted": households_among(session, set(counted)),
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
    }, min_cell)


# Figures derived from several legs rather than counts: withheld as null, never "<5".
STATISTICS = frozenset({"acknowledgement.median_hours", "acknowledgement.p90_hours",
                        "acknowledgement.share_answered_on_time"})


def suppress_small_counts(report: dict[str, Any], min_cell: int) -> dict[str, Any]:
    """A copy of `report` with every count from 1 to `min_cell` - 1 and every statistic of
    fewer than `min_cell` legs replaced by None, each listed in `suppression.suppressed`
    (dotted paths such as `received.by_pathway.training`)."""
    out = copy.deepcopy(report)
    withheld: list[str] = []

    def small(count: int | None) -> bool:
        return count is not None and 0 < count < min_cell

    def withhold(holder: dict[str, Any], key: str, path: str) -> None:
        holder[key] = None
        withheld.append(path)

    for name in ("participants_counted", "households_counted",
                 "legs_left_out_without_consent"):
        if small(out.get(name)):  # a report built before households has no count of them
            withhold(out, name, name)
    for direction in ("sent", "received"):
        block = out[direction]
        cells = block["by_pathway"]
        hidden = [pathway for pathway, count in cells.items() if small(count)]
        total_hidden = small(block["total"])
        if len(hidden) == 1 and not total_hidden:
            # The total less the other cells would give the hidden one back: hide the
            # next smallest too.
            shown = sorted((count, pathway) for pathway, count in cells.items()
                           if pathway not in hidden and count > 0)
            hidden += [pathway for _, pathway in shown[:1]]
        for pathway in hidden:
            withhold(cells, pathway, f"{direction}.by_pathway.{pathway}")
        if total_hidden:
            withhold(block, "total", f"{direction}.total")
    ack = out["acknowledgement"]
    if small(ack["acknowledged"]):  # the delays are those of the acknowledged legs
        for name in ("acknowledged", "median_hours", "p90_hours"):
            withhold(ack, name, f"acknowledgement.{name}")
    if small(ack["due"]) or small(ack["answered_on_time"]):
        # The share times `due` gives `answered_on_time` back: the share goes with either.
        for name in ("due", "answered_on_time"):
            if small(ack[name]):
                withhold(ack, name, f"acknowledgement.{name}")
        withhold(ack, "share_answered_on_time", "acknowledgement.share_answered_on_time")
    for direction, by_pathway in out["outcomes"].items():
        for pathway, counts in by_pathway.items():
            for outcome, count in list(counts.items()):
                if small(count):
                    withhold(counts, outcome, f"outcomes.{direction}.{pathway}.{outcome}")
    out["suppression"] = {"min_cell": min_cell, "suppressed": withheld}
    return out


CSV_COLUMNS = ("section", "direction", "pathway", "outcome", "value", "suppressed")


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report as long-format rows for a spreadsheet (one figure per row).  A withheld
    count reads `<5` (the threshold), a withheld statistic is empty, and both say `yes` in
    the `suppressed` column."""
    suppression = report.get("suppression") or {}
    withheld = set(suppression.get("suppressed", ()))
    rows: list[dict[str, Any]] = []

    def row(path: str, value: Any, **where: str) -> None:
        cell: dict[str, Any] = {**where, "value": value}
        if path in withheld:
            cell["value"] = "" if path in STATISTICS else f"<{suppression['min_cell']}"
            cell["suppressed"] = "yes"
        rows.append(cell)

    row("participants_counted", report["participants_counted"],
        section="participants_counted")
    if "households_counted" in report:
        row("households_counted", report["households_counted"], section="households_counted")
    row("legs_left_out_without_consent", report["legs_left_out_without_consent"],
        section="legs_left_out_without_consent")
    for direction in ("sent", "received"):
        row(f"{direction}.total", report[direction]["total"], section="referrals",
            direction=direction, pathway="all")
        for pathway, count in report[direction]["by_pathway"].items():
            row(f"{direction}.by_pathway.{pathway}", count, section="referrals",
                direction=direction, pathway=pathway)
    for name, value in report["acknowledgement"].items():
        row(f"acknowledgement.{name}", value, section=f"acknowledgement_{name}",
            direction="received")
    for direction, by_pathway in report["outcomes"].items():
        for pathway, counts in by_pathway.items():
            for outcome, count in counts.items():
                row(f"outcomes.{direction}.{pathway}.{outcome}", count, section="outcomes",
                    direction=direction, pathway=pathway, outcome=outcome)
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
        assert acknowledged_at is not None  # the query keeps acknowledged legs only
        delays[receiver].append(_hours(acknowledged_at, created_at))
    rows = [{"organization_id": receiver, "acknowledged": len(hours),
             "median_hours": median(hours), "p90_hours": percentile(hours, 0.9)}
            for receiver, hours in delays.items()]
    return sorted(rows, key=lambda row: (-row["median_hours"], str(row["organization_id"])))


def outcomes_by_pathway(session: Session, start: datetime, end: datetime, now: datetime,
                        *, min_cell: int = 1) -> dict[str, Any]:
    """Outcomes of the legs sent in [start, end) and completed, by pathway, counting only
    participants whose `outcome_reporting` consent covers the receiving organization (the
    rule of the funder reports, applied leg by leg).

    Counts from 1 to `min_cell` - 1 are None, as in the funder reports: "1 business started
    this quarter" in a region can point at a person.  No total is given beside the cells, so
    none can be recovered by subtraction."""
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
        assert outcome is not None  # `period` keeps legs with an outcome only
        by_pathway[pathway][outcome] = count
        kept += count
    completed = session.scalar(select(func.count()).select_from(Referral).where(*period)) or 0
    left_out = completed - kept

    def shown(count: int) -> int | None:
        return None if 0 < count < min_cell else count

    return {"by_pathway": {pathway: {outcome: shown(count) for outcome, count in outcomes.items()}
                           for pathway, outcomes in by_pathway.items()},
            "left_out_without_consent": shown(left_out), "min_cell": min_cell}


# --- retention: still there six months on (docs/design.md §10) --------------------------------

RETENTION_COUNTS = ("completed", "followups_recorded", "reached", "in_destination_region")
# Counts that are parts of `followups_recorded`: the rest of it is a count too.
RETENTION_PARTS = ("reached", "in_destination_region")
RETENTION_CSV_COLUMNS = ("region", "pathway", *RETENTION_COUNTS)


def retention_report(session: Session, start: datetime, end: datetime, now: datetime, *,
                     organization_id: uuid.UUID | None = None, min_cell: int = 1
                     ) -> dict[str, Any]:
    """For the legs completed in [start, end) (sent by `organization_id`; None: the whole
    network), per destination region (the receiving organization's) and pathway: how many,
    how many 180-day follow-ups were recorded, how many of those reached the person, and how
    many found them still in the destination region.

    Only participants whose `outcome_reporting` consent covers the sending organization (the
    one that made the calls) are counted.  A count from 1 to `min_cell` - 1 is withheld
    (None, named in `suppression.suppressed` as `region/pathway/count`), and so is a part of
    the recorded follow-ups (reached, still in the region) whose complement is that small:
    "9 of 10 still there" says who left.  No total is given beside the rows."""
    period = [Referral.status == "completed", Referral.closed_at >= start,
              Referral.closed_at < end]
    if organization_id is not None:
        period.append(Referral.from_organization_id == organization_id)
    counted = exists().where(Consent.participant_id == Referral.participant_id,
                             *_counted_by(Referral.from_organization_id, now))
    legs = session.execute(
        select(Referral.id, Referral.pathway, Organization.region)
        .join(Organization, Organization.id == Referral.to_organization_id)
        .where(*period, counted)).all()
    total = session.scalar(select(func.count()).select_from(Referral).where(*period)) or 0
    answers: dict[uuid.UUID, FollowUpRecord] = {}
    ids = [leg.id for leg in legs]
    for first in range(0, len(ids), 500):  # bounded IN lists
        answers.update((record.referral_id, record) for record in session.scalars(
            select(FollowUpRecord).where(FollowUpRecord.referral_id.in_(ids[first:first + 500]),
                                         FollowUpRecord.due == "followup_180")))
    cells: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for leg in legs:
        cell = cells[(leg.region, leg.pathway)]
        cell["completed"] += 1
        answer = answers.get(leg.id)
        if answer is not None:
            cell["followups_recorded"] += 1
            cell["reached"] += answer.reached
            cell["in_destination_region"] += answer.in_destination_region is True
    rows: list[dict[str, Any]] = [
        {"region": region, "pathway": pathway, **{name: counts[name] for name in RETENTION_COUNTS}}
        for (region, pathway), counts in sorted(cells.items())]
    withheld: list[str] = []

    def small(count: int | None) -> bool:
        return count is not None and 0 < count < min_cell

    for row in rows:
        where = f"{row['region']}/{row['pathway']}"
        recorded = row["followups_recorded"]
        hide = [name for name in RETENTION_COUNTS if small(row[name])]
        hide += [name for name in RETENTION_PARTS if name not in hide
                 and small(recorded - row[name])]
        for name in hide:
            row[name] = None
            withheld.append(f"{where}/{name}")
    left_out = total - len(legs)
    if small(left_out):
        withheld.append("legs_left_out_without_consent")
    return {
        "organization_id": str(organization_id) if organization_id else None,
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "rows": rows,
        "legs_left_out_without_consent": None if small(left_out) else left_out,
        "suppression": {"min_cell": min_cell, "suppressed": withheld},
    }


def retention_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's rows for a spreadsheet: a withheld count reads `<5` (the threshold)."""
    shown = f"<{report['suppression']['min_cell']}"
    return [{name: shown if row[name] is None else row[name] for name in RETENTION_CSV_COLUMNS}
            for row in report["rows"]]
