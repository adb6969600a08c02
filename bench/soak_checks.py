"""What must hold after the soak, read from the database, the feeds and the receiver.

Each check returns (passed, detail); the soak prints them all and fails if one fails.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Connection, text

from bench.soak_load import Organization
from bench.soak_receiver import Partners
from hub.referrals.lifecycle import Action, Party, Status, TransitionRefused, next_status

Result = tuple[bool, str]

# The lifecycle action each referral event records (deadline_missed and followup_due change
# nothing; `sent` opens the leg).
ACTION_OF_EVENT = {
    "referral.acknowledged": (Action.ACKNOWLEDGE, Party.RECEIVER),
    "referral.accepted": (Action.ACCEPT, Party.RECEIVER),
    "referral.declined": (Action.DECLINE, Party.RECEIVER),
    "referral.started": (Action.START, Party.RECEIVER),
    "referral.completed": (Action.COMPLETE, Party.RECEIVER),
    "referral.forwarded": (Action.FORWARD, Party.RECEIVER),
    "referral.cancelled": (Action.CANCEL, Party.SENDER),
    "referral.expired": (Action.EXPIRE, Party.SCHEDULER),
}
DEADLINE_STATUS = {"acknowledge": Status.SENT, "decide": Status.ACKNOWLEDGED,
                   "start": Status.ACCEPTED}
DEADLINE_COLUMN = {"acknowledge": "acknowledge_by", "decide": "decide_by",
                   "start": "start_by"}


def _data(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def feed_of(base_url: str, organization: Organization) -> list[dict[str, Any]]:
    """Every event the organization may see, from the start of its feed."""
    events: list[dict[str, Any]] = []
    after = "0"
    with httpx.Client(base_url=base_url, timeout=60) as client:
        while True:
            page = client.get("/api/v1/events", headers=organization.headers,
                              params={"after": after, "limit": 500})
            page.raise_for_status()
            body = page.json()
            events += body["items"]
            if not body["items"]:
                return events
            after = body["next_cursor"]


def webhooks_exactly_once(base_url: str, organizations: list[Organization],
                          partners: Partners) -> tuple[Result, Result, dict[str, int]]:
    """Every event of each organization's feed reached its endpoint, no other event did
    (after dedup on webhook-id), and first arrivals kept each subject's order."""
    by_path: dict[str, list[Any]] = defaultdict(list)
    for received in partners.received:
        by_path[received.path].append(received)
    missing = unexpected = duplicates = out_of_order = expected_total = 0
    samples: list[str] = []
    for organization in organizations:
        path = f"/hook/{organization.index}"
        feed = {event["id"] for event in feed_of(base_url, organization)}
        expected_total += len(feed)
        arrivals = by_path.get(path, [])
        counts = Counter(r.webhook_id for r in arrivals)
        duplicates += sum(n - 1 for n in counts.values())
        missing_here = feed - set(counts)
        unexpected_here = set(counts) - feed
        missing += len(missing_here)
        unexpected += len(unexpected_here)
        if missing_here and len(samples) < 5:
            samples.append(f"{path} missing {sorted(missing_here)[:3]}")
        if unexpected_here and len(samples) < 5:
            samples.append(f"{path} got events not in its feed {sorted(unexpected_here)[:3]}")
        last: dict[str, int] = {}
        seen: set[str] = set()
        for r in arrivals:
            if r.webhook_id in seen:
                continue
            seen.add(r.webhook_id)
            if r.sequence <= last.get(r.subject, 0):
                out_of_order += 1
                if len(samples) < 5:
                    samples.append(f"{path} {r.subject}: sequence {r.sequence} after "
                                   f"{last[r.subject]}")
            last[r.subject] = max(r.sequence, last.get(r.subject, 0))
    figures = {"expected": expected_total, "received": len(partners.received),
               "duplicates": duplicates, "missing": missing, "unexpected": unexpected,
               "out_of_order": out_of_order}
    once = (missing == 0 and unexpected == 0,
            f"{expected_total} (event, endpoint) pairs expected from the feeds; "
            f"{len(partners.received)} deliveries received, {duplicates} of them repeats "
            f"(at-least-once); missing {missing}, not in the feed {unexpected}"
            + (f"; {samples}" if samples else ""))
    ordered = (out_of_order == 0,
               f"{out_of_order} first arrivals out of their subject's order")
    return once, ordered, figures


def deadlines_once(connection: Connection, checked_at: datetime) -> tuple[Result, dict[str, int]]:
    """Every deadline check fired once per leg and kind: no repeats, one event per fired
    check, and nothing overdue at `checked_at` (the last pass) left unfired."""
    problems: list[str] = []
    repeated = connection.execute(text(
        "SELECT subject, data::json->>'check' AS kind, count(*) FROM events "
        "WHERE type = 'referral.deadline_missed' GROUP BY 1, 2 HAVING count(*) > 1")).all()
    if repeated:
        problems.append(f"{len(repeated)} (leg, check) fired more than once: {repeated[:3]}")
    fired = dict(connection.execute(text(
        "SELECT kind, count(*) FROM referral_checks GROUP BY kind")).all())
    events = dict(connection.execute(text(
        "SELECT data::json->>'check', count(*) FROM events "
        "WHERE type = 'referral.deadline_missed' GROUP BY 1")).all())
    expired_events = connection.execute(text(
        "SELECT count(*) FROM events WHERE type = 'referral.expired'")).scalar_one()
    for kind in DEADLINE_STATUS:
        if fired.get(kind, 0) != events.get(kind, 0):
            problems.append(f"{kind}: {fired.get(kind, 0)} checks recorded, "
                            f"{events.get(kind, 0)} deadline_missed events")
    if fired.get("expire", 0) != expired_events:
        problems.append(f"expire: {fired.get('expire', 0)} checks, {expired_events} events")
    for kind, status in DEADLINE_STATUS.items():
        column = DEADLINE_COLUMN[kind]
        overdue = connection.execute(text(
            f"SELECT count(*) FROM referrals r WHERE r.status = :status "
            f"AND r.{column} <= :at AND NOT EXISTS (SELECT 1 FROM referral_checks c "
            f"WHERE c.referral_id = r.id AND c.kind = :kind)"),
            {"status": status.value, "at": checked_at, "kind": kind}).scalar_one()
        if overdue:
            problems.append(f"{overdue} legs past their {kind} deadline without the check")
    unexpired = connection.execute(text(
        "SELECT count(*) FROM referrals WHERE status = 'sent' AND expire_by <= :at"),
        {"at": checked_at}).scalar_one()
    if unexpired:
        problems.append(f"{unexpired} legs past twice their deadline still sent")
    figures = {f"fired_{kind}": fired.get(kind, 0) for kind in (*DEADLINE_STATUS, "expire")}
    return (not problems, "; ".join(problems) or
            ", ".join(f"{k} {v}" for k, v in figures.items()) + " (each once)"), figures


def _leg_of(legs: dict[str, Any], leg_id: Any) -> Any:
    """A leg by id, whether the keys are bare hex (SQLite) or dashed (PostgreSQL, `only`)."""
    return legs.get(str(leg_id)) or legs[str(uuid.UUID(str(leg_id)))]


def states_agree(connection: Connection, only: Collection[str] | None = None
                 ) -> tuple[Result, Result, dict[str, int]]:
    """Replay each leg's events through the lifecycle rules: every step must be allowed,
    every snapshot must show the replayed status, and the end must be the leg's row.

    `only` limits the check to those legs (and the legs they were forwarded to): a test's
    database is shared by the whole run, whose other tests may forge rows on purpose."""
    legs = {str(row.id): row for row in connection.execute(text(
        "SELECT id, status, version, closed_at, forwarded_to, forwarded_from, acknowledged_at "
        "FROM referrals"))}
    history: dict[str, list[Any]] = defaultdict(list)
    for event in connection.execute(text(
            "SELECT subject, sequence, type, data FROM events "
            "WHERE subject LIKE 'referrals/%' ORDER BY subject, sequence")):
        history[event.subject.removeprefix("referrals/")].append(event)
    if only is not None:
        # SQLite hands ids back as bare hex: they are compared as UUIDs.
        legs = {str(uuid.UUID(leg_id)): leg for leg_id, leg in legs.items()}
        wanted = {str(uuid.UUID(leg_id)) for leg_id in only}
        for leg_id in list(wanted):
            while legs.get(leg_id) is not None and legs[leg_id].forwarded_to is not None:
                leg_id = str(uuid.UUID(str(legs[leg_id].forwarded_to)))
                wanted.add(leg_id)
        legs = {leg_id: leg for leg_id, leg in legs.items() if leg_id in wanted}
        history = defaultdict(list, {s: h for s, h in history.items() if s in wanted})
    impossible: list[str] = []
    disagree: list[str] = []
    for leg_id, leg in legs.items():
        events = history.get(leg_id, [])
        if [e.sequence for e in events] != list(range(1, len(events) + 1)):
            disagree.append(f"{leg_id}: sequences {[e.sequence for e in events][:8]}")
            continue
        if not events or events[0].type != "referral.sent":
            disagree.append(f"{leg_id}: history does not start with referral.sent")
            continue
        status = Status.SENT
        for event in events[1:]:
            if event.type in ACTION_OF_EVENT:
                action, party = ACTION_OF_EVENT[event.type]
                try:
                    status = next_status(status, action, party)
                except TransitionRefused:
                    impossible.append(f"{leg_id}: {event.type} from {status}")
                    break
            elif event.type == "referral.deadline_missed":
                check = _data(event.data).get("check")
                if DEADLINE_STATUS.get(check) != status:
                    impossible.append(f"{leg_id}: {check} deadline missed while {status}")
            snapshot = _data(event.data)["referral"]["status"]
            if snapshot != status.value:
                disagree.append(f"{leg_id}: event {event.sequence} shows {snapshot}, "
                                f"replay {status}")
        if status.value != leg.status or leg.version != len(events):
            disagree.append(f"{leg_id}: row {leg.status} v{leg.version}, "
                            f"log {status} after {len(events)} events")
        terminal = Status(leg.status) in {Status.DECLINED, Status.COMPLETED, Status.CANCELLED,
                                          Status.EXPIRED, Status.FORWARDED}
        if terminal != (leg.closed_at is not None):
            impossible.append(f"{leg_id}: {leg.status} with closed_at {leg.closed_at}")
        if (leg.status == "forwarded") != (leg.forwarded_to is not None):
            impossible.append(f"{leg_id}: {leg.status} with forwarded_to {leg.forwarded_to}")
        if leg.forwarded_to is not None and (
                uuid.UUID(str(_leg_of(legs, leg.forwarded_to).forwarded_from))
                != uuid.UUID(leg_id)):
            impossible.append(f"{leg_id}: next leg does not point back")
        if leg.status == "expired" and leg.acknowledged_at is not None:
            impossible.append(f"{leg_id}: expired after being acknowledged")
    orphans = set(history) - set(legs)
    if orphans:
        disagree.append(f"{len(orphans)} event subjects without a leg")
    counts = Counter(leg.status for leg in legs.values())
    return ((not impossible, f"{len(legs)} legs: {dict(sorted(counts.items()))}; "
             f"impossible: {len(impossible)} {impossible[:3]}"),
            (not disagree, f"{sum(len(h) for h in history.values())} referral events "
             f"replayed; disagreements: {len(disagree)} {disagree[:3]}"),
            dict(counts))
