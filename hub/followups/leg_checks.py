"""The follow-up checks of docs/design.md §6: missed deadlines, expiry, post-handoff follow-ups.

Each check reads the legs that are due through a partial index on a due-at column
(`deadline_due_at`, `expire_by`, `followup_due_at`: `hub.followups.deadlines.arm_checks` sets
them when a leg changes status, the check clears or moves them when it fires), so its cost
follows what is due, never the size of the history; never one scheduler job per leg.  A batch
is fired set-based, in a handful of statements for all its legs (`_fire`): the (leg, kind) rows
of `referral_checks` are inserted first, their primary key the last line of defence when two
schedulers race, so each check fires at most once per leg and kind.  A check handles a bounded
number of legs per pass, so a scheduler back after a day catches up over a few passes without
a storm.  Events are appended by `hub.events` (`record`, `record_many`, and on PostgreSQL the
CTEs of `hub.events.bulk.appending` inside the firing statement), never written here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    ForeignKey,
    Integer,
    Row,
    String,
    Uuid,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql import Executable, Select

from hub.consent import consents
from hub.db import Base, UTCDateTime, iso_utc, table_of
from hub.directory.organizations import Organization, Service, ServicePathway
from hub.directory.outdated import OutdatedReport
from hub.events.bulk import (
    NewEvent,
    RowEvents,
    appended_events,
    appending,
    new_ids,
    record_many,
)
from hub.events.store import Event, record
from hub.events.types import EventType
from hub.followups import digests, staff_mails
from hub.followups.deadlines import DEADLINE_OF_STATUS, FOLLOW_UP_AFTER
from hub.followups.staff_mails import DEFAULT_PUBLIC_URL
from hub.referrals import lifecycle
from hub.referrals.legs import LEGS, Referral, snapshot
from hub.referrals.lifecycle import Action, Party, Status
from hub.referrals.participants import Participant

log = logging.getLogger(__name__)

BATCH = 500
# A pass fires at most this many batches of missed deadlines (1,500 legs, as when each of the
# three deadlines had a batch of its own): the scheduler's 10 passes per tick clear 15,000.
DEADLINE_BATCHES_PER_PASS = 3

# What an event's snapshot reads (`referrals.snapshot`): no free text, nothing to decrypt.
SNAPSHOT_COLUMNS = [c for c in LEGS.c if c.key not in ("reason_for_referral", "needs")]


class ReferralCheck(Base):
    """A check that fired for a leg: one row per (leg, kind), ever."""

    __tablename__ = "referral_checks"

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    due_at: Mapped[datetime]
    # Indexed: the follow-up digest reads what fired since its look-back window.
    fired_at: Mapped[datetime] = mapped_column(index=True)


FIRED = table_of(ReferralCheck)


@dataclass(frozen=True)
class Due:
    """A leg whose check `kind` is due, as read (its version: a leg changed since is left)."""

    id: uuid.UUID
    version: int
    kind: str
    due_at: datetime
    next_due: datetime | None = None  # what its due-at column becomes once the check fired
    announce: bool = True  # False: recorded as fired, without event (no consent, say)


def _locked(session: Session, query: Select[Any]) -> Select[Any]:
    """On PostgreSQL the due legs are locked until commit, and legs another scheduler holds
    are skipped: nothing can change them before this transaction fires them."""
    if _postgres(session):
        return query.with_for_update(skip_locked=True, of=LEGS)
    return query


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _unnest(**arrays: Any) -> Any:
    """PostgreSQL: rows from parallel array parameters, `unnest(:a, :b) AS anon(a, b)`: one
    statement text whatever the batch size (compiled once, sent with a handful of
    parameters), where a multi-row VALUES would have thousands."""
    return (func.unnest(*(bindparam(name, type_=ARRAY(type_))
                          for name, type_ in arrays.items()))
            .table_valued(*arrays).render_derived())


def _claim(session: Session, due: Sequence[Due], now: datetime) -> set[tuple[uuid.UUID, str]]:
    """Insert the (leg, kind) rows in one statement; returns those inserted: the others fired
    already (another scheduler won)."""
    if not due:
        return set()
    columns = ["referral_id", "kind", "due_at", "fired_at"]
    returned = (FIRED.c.referral_id, FIRED.c.kind)
    statement: Executable  # each dialect's INSERT ... ON CONFLICT is a type of its own
    if _postgres(session):
        rows = _unnest(referral_id=Uuid(), kind=String(), due_at=UTCDateTime())
        from_rows = pg_insert(FIRED).from_select(columns, select(
            rows.c.referral_id, rows.c.kind, rows.c.due_at,
            bindparam("fired_at", type_=UTCDateTime())))
        statement = from_rows.on_conflict_do_nothing().returning(*returned)
        parameters: dict[str, Any] = {"referral_id": [d.id for d in due],
                                      "kind": [d.kind for d in due],
                                      "due_at": [d.due_at for d in due], "fired_at": now}
    else:
        values = sqlite_insert(FIRED).values([dict(zip(columns, (
            d.id, d.kind, d.due_at, now), strict=True)) for d in due])
        statement = values.on_conflict_do_nothing().returning(*returned)
        parameters = {}
    inserted = session.connection().execute(statement, parameters)
    return {(row.referral_id, row.kind) for row in inserted}


def _as_read(session: Session, due: Sequence[Due]) -> tuple[list[Any], dict[str, Any]]:
    """WHERE criteria and their parameters: each leg still at the version it was read at."""
    if _postgres(session):
        read = _unnest(leg_id=Uuid(), leg_version=Integer())
        return ([LEGS.c.id == read.c.leg_id, LEGS.c.version == read.c.leg_version],
                {"leg_id": [d.id for d in due], "leg_version": [d.version for d in due]})
    return [tuple_(LEGS.c.id, LEGS.c.version).in_([(d.id, d.version) for d in due])], {}


def _clear(session: Session, due: Sequence[Due], column: str) -> None:
    where, parameters = _as_read(session, due)
    session.connection().execute(update(LEGS).where(*where).values({column: None}), parameters)


def _next_due(due: Sequence[Due]) -> Any:
    """The new value of the due-at column: one value, or one per leg."""
    values = {d.next_due for d in due}
    if len(values) == 1:
        return values.pop()
    return case({d.id: literal(d.next_due, UTCDateTime()) for d in due}, value=LEGS.c.id)


def _fire(session: Session, now: datetime, due: Sequence[Due], *, column: str | None,
          event: Callable[[Row[Any], Due], NewEvent], changes: dict[str, Any] | None = None,
          recorded: Callable[[list[int]], None] | None = None) -> int:
    """Fire a batch of due legs in a few statements; returns how many events were appended.

    1. claim every (leg, kind) (`_claim`);
    2. the legs claimed and announced move on one version (`updated_at`, `changes`, their
       due-at `column` set to `next_due`): one UPDATE ... RETURNING their new state;
    3. the others (fired already, or recorded without event) only get their `column` moved;
    4. a leg changed since it was read (SQLite has no row locks) gets its claim back and is
       left for the next pass, which sees its new state;
    5. one event per leg moved on, appended together (`record_many`); `recorded` gets their
       positions, in the order `event` was called."""
    claimed = _claim(session, due, now)
    announced = [d for d in due if d.announce and (d.id, d.kind) in claimed]
    quiet = [d for d in due if not d.announce or (d.id, d.kind) not in claimed]
    connection = session.connection()
    moved: dict[uuid.UUID, Row[Any]] = {}
    if announced:
        values = {"version": LEGS.c.version + 1, "updated_at": now, **(changes or {})}
        if column is not None:
            values[column] = _next_due(announced)
        where, parameters = _as_read(session, announced)
        moved = {row.id: row for row in connection.execute(
            update(LEGS).where(*where).values(values).returning(*SNAPSHOT_COLUMNS),
            parameters)}
    kept: set[uuid.UUID] = set()
    if quiet and column is not None:
        where, parameters = _as_read(session, quiet)
        kept = set(connection.scalars(update(LEGS).where(*where).values(
            {column: _next_due(quiet)}).returning(LEGS.c.id), parameters))
    lost = [d for d in announced if d.id not in moved]
    lost += [d for d in quiet if (d.id, d.kind) in claimed and column is not None
             and d.id not in kept]
    if lost:
        connection.execute(delete(FIRED).where(tuple_(FIRED.c.referral_id, FIRED.c.kind)
                                               .in_([(d.id, d.kind) for d in lost])))
    positions = record_many(session, [event(moved[d.id], d) for d in announced
                                      if d.id in moved])
    if recorded is not None:
        recorded(positions)
    return sum(1 for d in announced if d.id in moved)


def _referral_event(type: EventType, leg: Row[Any], extra: dict[str, Any],
                    audience: set[uuid.UUID] | None = None) -> NewEvent:
    """The leg's event, as `legs.record_leg_event` makes it for the scheduler."""
    return NewEvent(type, subject=f"referrals/{leg.id}", sequence=leg.version,
                    data={"referral": snapshot(cast(Referral, leg)), **extra},
                    audience=audience or {leg.from_organization_id, leg.to_organization_id})


def _missed(leg: Row[Any], d: Due) -> NewEvent:
    return _referral_event(EventType.REFERRAL_DEADLINE_MISSED, leg, {
        "check": d.kind, "due_at": iso_utc(d.due_at), "source": "scheduler"})


def deadlines_pending(now: datetime) -> Any:
    """Whether `deadlines_missed` has anything to do at `now` (`hub.followups.tick.run_once` asks
    every check at once before opening a transaction for each)."""
    return exists().where(LEGS.c.deadline_due_at <= now)


def deadlines_due(session: Session, now: datetime, limit: int) -> list[Row[Any]]:
    """Up to `limit` legs whose deadline is due, oldest first, locked (PostgreSQL)."""
    return list(session.execute(_locked(session, (
        select(LEGS.c.id, LEGS.c.version, LEGS.c.status, LEGS.c.deadline_due_at)
        .where(LEGS.c.deadline_due_at <= now)
        .order_by(LEGS.c.deadline_due_at).limit(limit)))))


def deadlines_missed(session: Session, now: datetime, limit: int = BATCH) -> int:
    """`referral.deadline_missed` to both organizations for every leg past the deadline of its
    status (acknowledge, decide, start: `hub.followups.deadlines.DEADLINE_OF_STATUS`).
    Nothing is mailed here: after the tick's passes, one digest per receiving organization's
    contact lists them (`hub.followups.digests`)."""
    fired = 0
    for _ in range(DEADLINE_BATCHES_PER_PASS):
        rows = deadlines_due(session, now, limit)
        due = [Due(row.id, row.version, DEADLINE_OF_STATUS[row.status][0],
                   row.deadline_due_at) for row in rows if row.status in DEADLINE_OF_STATUS]
        stale = [Due(row.id, row.version, "", row.deadline_due_at) for row in rows
                 if row.status not in DEADLINE_OF_STATUS]
        if stale:  # moved on without its column cleared: nothing is due
            _clear(session, stale, "deadline_due_at")
        missed = (fire_missed_in_sql if _postgres(session) else _fire_missed)(session, now, due)
        fired += len(missed)
        if len(rows) < limit:
            break
    return fired


@dataclass(frozen=True)
class Missed:
    """A leg whose `referral.deadline_missed` was just recorded."""

    id: uuid.UUID
    from_organization_id: uuid.UUID
    to_organization_id: uuid.UUID
    kind: str
    due_at: datetime


def _fire_missed(session: Session, now: datetime, due: Sequence[Due]) -> list[Missed]:
    """`_fire` for missed deadlines (SQLite): the legs moved on, each queued for the tick's
    digest (`hub.followups.digests`)."""
    missed: list[Missed] = []

    def event(leg: Row[Any], d: Due) -> NewEvent:
        missed.append(Missed(leg.id, leg.from_organization_id, leg.to_organization_id, d.kind,
                             d.due_at))
        return _missed(leg, d)

    def queue(positions: list[int]) -> None:
        digests.queue_misses(session, ({
            "event_position": position, "referral_id": m.id,
            "from_organization_id": m.from_organization_id,
            "to_organization_id": m.to_organization_id, "check": m.kind, "due_at": m.due_at,
            "from_participant": False} for m, position in zip(missed, positions, strict=True)))

    _fire(session, now, due, column="deadline_due_at", event=event, recorded=queue)
    return missed


def _iso_sql(column: str) -> str:
    """SQL rendering a naive-UTC timestamp column as `hub.db.iso_utc` does (NULL stays
    NULL; microseconds only when there are some)."""
    return (f"to_char({column}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
            f"date_trunc('second', {column}) = {column} THEN '' ELSE to_char({column}, '.US') "
            f"END || 'Z'")


# PostgreSQL: a batch of claimed legs moved on and announced in one statement: the legs move
# on (`moved`), their events are appended by the event log's own CTEs (`hub.events.bulk`),
# the event's snapshot (`referrals.snapshot`) built by the server, and each miss is queued for
# the tick's digest (`hub.followups.digests`): what comes back to Python is only the legs'
# ids, organizations, checks and due times.  The legs are locked by the due query, so their
# version cannot have moved; the version test stays, and a leg it leaves out has its claim
# given back.
_MISSED_EVENTS = RowEvents(
    EventType.REFERRAL_DEADLINE_MISSED, rows="moved", id="moved.event_id",
    subject="'referrals/' || moved.id", sequence="moved.version",
    data=f"""json_build_object(
               'referral', json_build_object(
                   'id', moved.id::text, 'chain_id', moved.chain_id::text,
                   'participant_id', moved.participant_id::text,
                   'from_organization_id', moved.from_organization_id::text,
                   'to_organization_id', moved.to_organization_id::text,
                   'pathway', moved.pathway, 'stage', moved.stage,
                   'priority', moved.priority,
                   'needed_by', to_char(moved.needed_by, 'YYYY-MM-DD'),
                   'opportunity_id', moved.opportunity_id::text,
                   'status', moved.status, 'version', moved.version,
                   'forwarded_from', moved.forwarded_from::text,
                   'forwarded_to', moved.forwarded_to::text,
                   'decline_reason', moved.decline_reason, 'outcome', moved.outcome,
                   'cancel_reason', moved.cancel_reason,
                   'created_at', {_iso_sql("moved.created_at")},
                   'updated_at', {_iso_sql("moved.updated_at")},
                   'deadlines', json_build_object(
                       'acknowledge_by', {_iso_sql("moved.acknowledge_by")},
                       'decide_by', {_iso_sql("moved.decide_by")},
                       'start_by', {_iso_sql("moved.start_by")})),
               'check', moved.check_kind, 'due_at', {_iso_sql("moved.check_due_at")},
               'source', 'scheduler')""",
    audience=("moved.from_organization_id", "moved.to_organization_id"),
    order="moved.n", time="CAST(:now AS timestamp)")

_FIRE_MISSED = text(f"""
WITH due AS (
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:versions AS integer[]),
                         CAST(:kinds AS varchar[]), CAST(:due_ats AS timestamp[]),
                         CAST(:event_ids AS varchar[]))
        WITH ORDINALITY AS d (id, version, kind, due_at, event_id, n)
), moved AS (
    UPDATE referrals AS r SET version = r.version + 1, updated_at = CAST(:now AS timestamp),
                              deadline_due_at = NULL
    FROM due WHERE r.id = due.id AND r.version = due.version
    RETURNING r.*, due.kind AS check_kind, due.due_at AS check_due_at, due.event_id, due.n
), {appending(_MISSED_EVENTS)}, digest_queue AS (
    INSERT INTO deadline_digest_queue (event_position, referral_id, from_organization_id,
                                       to_organization_id, "check", due_at, from_participant)
    SELECT appended.position, moved.id, moved.from_organization_id, moved.to_organization_id,
           moved.check_kind, moved.check_due_at, false
    FROM moved JOIN appended ON appended.id = moved.event_id
)
SELECT id, from_organization_id, to_organization_id, check_kind, check_due_at
FROM moved ORDER BY n
""")


def fire_missed_in_sql(session: Session, now: datetime, due: Sequence[Due]) -> list[Missed]:
    """PostgreSQL's `_fire` for missed deadlines: claim, then one statement for the rest."""
    claimed = _claim(session, due, now)
    announced = [d for d in due if (d.id, d.kind) in claimed]
    if not announced:
        return []
    naive = now.astimezone(UTC).replace(tzinfo=None)  # stored naive UTC (hub.db)
    connection = session.connection()
    moved = [Missed(row.id, row.from_organization_id, row.to_organization_id, row.check_kind,
                    row.check_due_at.replace(tzinfo=UTC))
             for row in connection.execute(_FIRE_MISSED, {
                 "ids": [d.id for d in announced], "versions": [d.version for d in announced],
                 "kinds": [d.kind for d in announced],
                 "due_ats": [d.due_at.astimezone(UTC).replace(tzinfo=None) for d in announced],
                 "event_ids": new_ids(len(announced)), "now": naive})]
    if len(moved) < len(announced):  # cannot happen under the row locks; kept for safety
        kept = {m.id for m in moved}
        connection.execute(delete(FIRED).where(tuple_(FIRED.c.referral_id, FIRED.c.kind).in_(
            [(d.id, d.kind) for d in announced if d.id not in kept])))
    appended_events(session, _MISSED_EVENTS, len(moved))
    return moved


def suggestions(session: Session, leg: Referral, limit: int = 5) -> list[dict[str, str]]:
    """Other organizations of the receiving organization's region that serve the leg's
    pathway and have room, to redirect to."""
    receiver = session.get(Organization, leg.to_organization_id)
    if receiver is None:
        return []
    serves_pathway = exists().where(Service.organization_id == Organization.id,
                                    ServicePathway.service_id == Service.id,
                                    ServicePathway.pathway == leg.pathway)
    found = session.scalars(
        select(Organization).where(
            Organization.region == receiver.region,
            Organization.id.not_in([leg.to_organization_id, leg.from_organization_id]),
            Organization.kind != "coordination",
            Organization.capacity == "open",
            serves_pathway,
        ).order_by(Organization.name).limit(limit))
    return [{"id": str(o.id), "name": o.name, "kind": o.kind, "region": o.region}
            for o in found]


def _expiring(now: datetime) -> list[Any]:
    return [LEGS.c.status == Status.SENT.value, LEGS.c.expire_by <= now,
            ~exists().where(ReferralCheck.referral_id == LEGS.c.id,
                            ReferralCheck.kind == "expire")]


def expirations_pending(now: datetime) -> Any:
    return exists().where(*_expiring(now))


def expirations(session: Session, now: datetime, limit: int = BATCH, *,
                public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """Legs unacknowledged at twice the deadline expire; the sender is told to redirect, by a
    mail whose link starts with `public_url` (HUB_PUBLIC_URL)."""
    lifecycle.next_status(Status.SENT, Action.EXPIRE, Party.SCHEDULER)  # the rule allows it
    rows = session.execute(_locked(session, (
        select(LEGS.c.id, LEGS.c.version, LEGS.c.expire_by).where(*_expiring(now))
        .order_by(LEGS.c.expire_by).limit(limit)))).all()
    redirect_to: dict[tuple[uuid.UUID, uuid.UUID, str], list[dict[str, str]]] = {}
    expired_legs: list[tuple[Row[Any], list[dict[str, str]]]] = []

    def expired(leg: Row[Any], d: Due) -> NewEvent:
        key = (leg.to_organization_id, leg.from_organization_id, leg.pathway)
        if key not in redirect_to:
            redirect_to[key] = suggestions(session, cast(Referral, leg))
        expired_legs.append((leg, redirect_to[key]))
        return _referral_event(EventType.REFERRAL_EXPIRED, leg,
                               {"redirect_to": redirect_to[key]})

    # An expired leg has nothing left to check: every due-at column is cleared.
    fired = _fire(session, now, [Due(row.id, row.version, "expire", row.expire_by)
                                 for row in rows],
                  column=None, event=expired,
                  changes={"status": Status.EXPIRED.value, "closed_at": now,
                           "deadline_due_at": None, "followup_due_at": None,
                           "checkin_due_at": None})
    for leg, suggested in expired_legs:  # the sender is told to redirect
        staff_mails.leg_expired(session, leg, suggested, now, public_url=public_url)
    return fired


def followups_pending(now: datetime) -> Any:
    return exists().where(LEGS.c.followup_due_at <= now)


def followups_due(session: Session, now: datetime, limit: int = BATCH) -> int:
    """`referral.followup_due` to the sending organization 30 and 180 days after completion,
    only with the participant's `follow_up_contact` consent (else the check is recorded as
    skipped, so it is not looked at again)."""
    fired = 0
    for _ in FOLLOW_UP_AFTER:  # as many batches per pass as there are follow-ups
        rows = session.execute(_locked(session, (
            select(LEGS.c.id, LEGS.c.version, LEGS.c.status, LEGS.c.closed_at,
                   LEGS.c.followup_due_at, LEGS.c.participant_id, LEGS.c.from_organization_id)
            .where(LEGS.c.followup_due_at <= now)
            .order_by(LEGS.c.followup_due_at).limit(limit)))).all()
        if not rows:
            break
        participants = {p.id: p for p in session.scalars(select(Participant).where(
            Participant.id.in_({row.participant_id for row in rows})))}
        due, stale = [], []
        for row in rows:
            if row.status != Status.COMPLETED.value or row.closed_at is None:
                stale.append(Due(row.id, row.version, "", row.followup_due_at))
                continue
            kind = _follow_up_of(row.followup_due_at - row.closed_at)
            later = [row.closed_at + after for after in FOLLOW_UP_AFTER.values()
                     if row.closed_at + after > row.followup_due_at]
            allowed = consents.covers(session, participants[row.participant_id],
                                     row.from_organization_id,
                                     consents.Purpose.FOLLOW_UP_CONTACT, now)
            due.append(Due(row.id, row.version, kind, row.closed_at + FOLLOW_UP_AFTER[kind],
                           next_due=later[0] if later else None, announce=allowed))
        if stale:  # not completed (cannot happen through the lifecycle): nothing is due
            _clear(session, stale, "followup_due_at")

        def follow_up(leg: Row[Any], d: Due) -> NewEvent:
            return _referral_event(EventType.REFERRAL_FOLLOWUP_DUE, leg,
                                   {"check": d.kind, "due_at": iso_utc(d.due_at)},
                                   audience={leg.from_organization_id})

        fired += _fire(session, now, due, column="followup_due_at", event=follow_up)
        if len(rows) < limit:
            break
    return fired


def _follow_up_of(since_closed: timedelta) -> str:
    """The follow-up whose time it is, `since_closed` after completion."""
    kinds = [kind for kind, after in FOLLOW_UP_AFTER.items() if after <= since_closed]
    return kinds[-1] if kinds else next(iter(FOLLOW_UP_AFTER))


class OrganizationCheck(Base):
    """A directory-validation reminder that fired: once per organization and validation it
    is about (a new validation starts a new 12 months)."""

    __tablename__ = "organization_checks"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       primary_key=True)
    last_validated_at: Mapped[datetime] = mapped_column(primary_key=True)
    fired_at: Mapped[datetime]


VALIDATION_EVERY = timedelta(days=365)


def _unvalidated(now: datetime) -> list[Any]:
    not_fired = ~exists().where(
        OrganizationCheck.organization_id == Organization.id,
        OrganizationCheck.last_validated_at == Organization.last_validated_at)
    return [Organization.last_validated_at <= now - VALIDATION_EVERY, not_fired]


def validations_pending(now: datetime) -> Any:
    return exists().where(*_unvalidated(now))


def _open_outdated_reports(session: Session, organization_id: uuid.UUID) -> int:
    return session.scalar(select(func.count()).select_from(OutdatedReport).where(
        OutdatedReport.organization_id == organization_id,
        OutdatedReport.resolved_at.is_(None))) or 0


def validations_due(session: Session, now: datetime, limit: int = BATCH) -> int:
    """`organization.validation_due` for directory entries not validated for 12 months."""
    query = (select(Organization).where(*_unvalidated(now))
             .order_by(Organization.last_validated_at).limit(limit))
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    fired = 0
    for organization in session.scalars(query):
        due_at = organization.last_validated_at + VALIDATION_EVERY
        claimed = session.execute(
            insert(OrganizationCheck)
            .values(organization_id=organization.id,
                    last_validated_at=organization.last_validated_at, fired_at=now)
            .on_conflict_do_nothing().returning(OrganizationCheck.organization_id)).first()
        if claimed is None:
            continue
        subject = f"organizations/{organization.id}"
        previous = session.scalar(select(Event.sequence).where(Event.subject == subject)
                                  .order_by(Event.sequence.desc()).limit(1)) or 0
        record(session, EventType.ORGANIZATION_VALIDATION_DUE, subject=subject,
               sequence=previous + 1, source_organization_id=None, actor="scheduler",
               data={"organization": {"id": str(organization.id), "name": organization.name,
                                      "last_validated_at": iso_utc(
                                          organization.last_validated_at),
                                      "due_at": iso_utc(due_at)},
                     # What partners said is out of date, to look at while validating.
                     "outdated_reports": {
                         "open": _open_outdated_reports(session, organization.id),
                         "url": f"/api/v1/organizations/{organization.id}/outdated-reports"}},
               audience={organization.id})
        fired += 1
    return fired
