"""The scheduled follow-up checks at scale: one full tick of the scheduler on PostgreSQL.

Targets (docs/design.md §6): with 1,000,000 legs of which 10,000 are past a deadline, one full check
tick finds and records all 10,000 in under 5 s, and a tick with nothing due takes under 50 ms;
the cost of a tick follows what is due, not the size of the history: the full tick at
1,000,000 legs takes under 1.5 times the full tick at 10,000 legs, with 10,000 due in both.

Two fresh databases on the benchmark's PostgreSQL server (`scripts/test-postgres.sh`, fsync on),
each migrated with `hub.ops.upgrade_database`, then seeded by a bulk loader (COPY and
INSERT ... SELECT, never the API):
- small: 10,000 legs, all of them open and past a deadline (no history at all);
- large: 1,000,000 legs: 10,000 past a deadline, the rest a 3-year history whose checks already
  fired (follow-ups of completed legs, expiries, deadlines of legs still stuck open).
On each: one warm-up tick with nothing due, the full tick (`CheckScheduler.tick`, as the
scheduler runs it: passes of the firing checks until one handles nothing, then the digest that
mails the receivers' contacts, `hub.followups.digests`), then ticks with nothing due.  What was
recorded is counted in the database, and the digests are read back (decrypted) to count the
legs they list.  The history's misses were mailed when they fired: none is queued for the
digest (`deadline_digest_queue` starts empty).  See bench/checks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/checks.py` puts bench/ first on sys.path, where bench/webhooks.py would shadow
# the `webhooks` package the hub imports: the imports below come after this fix.
# ruff: noqa: E402
ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

import argparse
import bisect
import contextlib
import itertools
import json
import logging
import os
import random
import re
import secrets
import statistics
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bench import databases
from bench.databases import bench_server, start_server
from hub import crypto
from hub.db import make_engine
from hub.followups import checkins, leg_checks, scheduler
from hub.followups import tick as checks
from hub.followups.deadlines import DEFAULT_POLICY, add_business_days
from hub.followups.scheduler import CheckScheduler
from hub.ops import upgrade_database
from hub.outbox.mail import OutgoingMail

FULL_TICK_TARGET_S = 5.0
IDLE_TICK_TARGET_MS = 50.0
RATIO_TARGET = 1.5

DAY = 86400.0
HOUR = 3600.0
HISTORY_SECONDS = 3 * 365 * DAY  # legs created over the last 3 years
# Open legs past a deadline: the deadline passed 1 minute to 20 hours ago (due now); legs stuck
# open whose check fired already: their deadline passed 2 to 200 days ago.
DUE_AGE = (60.0, 20 * HOUR)
STALE_AGE = (2 * DAY, 200 * DAY)
STALE_MIN_AGE = timedelta(seconds=STALE_AGE[0])
FIRED_AFTER = timedelta(minutes=1)  # history's checks fired a scheduler interval after due
WARM_UP_BEFORE = timedelta(days=60)  # the warm-up pass runs at now - 60 days: nothing due

# The checks of the 10,000 due legs, by deadline: (kind, status, share).
DUE_KINDS = (("acknowledge", "sent", 0.4), ("decide", "acknowledged", 0.3),
             ("start", "accepted", 0.3))
STALE_KINDS = (("decide", "acknowledged", 0.5), ("start", "accepted", 0.5))
# The history (legs not due), by status; completed takes what the others leave.
HISTORY_SHARES = {"declined": 0.15, "cancelled": 0.08, "forwarded": 0.08, "expired": 0.03,
                  "in_progress": 0.05, "sent": 0.01, "acknowledged": 0.01, "accepted": 0.01}
# A forwarded leg's next leg: closed (squeezed to end before now when it starts late).
SUCCESSOR_STATUSES = ("completed", "declined", "cancelled", "forwarded")
SUCCESSOR_WEIGHTS = (0.6, 0.2, 0.1, 0.1)
OPEN_MILESTONES = {"sent": 1, "acknowledged": 2, "accepted": 3, "in_progress": 4}
VERSION = {"sent": 1, "acknowledged": 2, "accepted": 3, "in_progress": 4, "completed": 5,
           "declined": 3, "cancelled": 2, "forwarded": 3, "expired": 2}
PATHWAYS = ("employment", "employment", "employment", "settlement", "training", "training",
            "entrepreneurship", "cooperative_entrepreneurship", "other")
ENTREPRENEURSHIP = {"entrepreneurship", "cooperative_entrepreneurship"}
KINDS = ("community", "community", "community", "regional_partner", "regional_partner",
         "entrepreneurship_agency", "cooperative_development", "insertion_enterprise",
         "employer")
OUTCOMES = ("employed", "employed", "in_training", "business_started", "settled",
            "service_delivered", "service_delivered", "participant_withdrew", "no_show",
            "other")
DECLINE_REASONS = ("not_eligible", "no_capacity", "no_capacity", "out_of_region",
                   "participant_unreachable", "duplicate", "other")
CANCEL_REASONS = ("participant_withdrew", "referred_elsewhere", "no_longer_needed",
                  "sent_by_mistake", "other")
NEEDS = (["french_classes"], ["cv", "interview_practice"], ["childcare"], ["transport"],
         ["credential_recognition"], ["business_plan"], ["financing", "mentoring"], [],
         ["housing"], ["digital_skills"], ["cv"], ["mentoring"])
REASONS = ("Recherche un emploi en logistique après un arrêt de travail.",
           "Nouvelle arrivante, souhaite faire reconnaître son diplôme.",
           "Projet de coopérative de services à domicile, au stade de l'idée.",
           "Besoin d'un accompagnement intensif vers l'emploi.",
           "Looking for evening French classes and part-time work.",
           "Wants to start a food truck; needs help with the business plan.")

REFERRAL_COLUMNS = (
    "id", "chain_id", "participant_id", "from_organization_id", "to_organization_id", "pathway",
    "stage", "priority", "reason_for_referral", "needs", "status", "version", "forwarded_from",
    "forwarded_to", "decline_reason", "outcome", "cancel_reason", "created_at", "updated_at",
    "acknowledged_at", "accepted_at", "started_at", "closed_at", "acknowledge_by", "decide_by",
    "start_by", "expire_by")
# Tables the loader fills in bulk: their secondary indexes, unique and foreign-key constraints
# are dropped during the load and made again from their exact definitions afterwards.
BULK_TABLES = ("referrals", "referral_checks", "events", "event_audience")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def naive(moment: datetime) -> datetime:
    """How the hub stores a moment: naive UTC (see hub.db.UTCDateTime)."""
    return moment.astimezone(UTC).replace(tzinfo=None)


# --- PostgreSQL -----------------------------------------------------------------------------

def admin_url() -> str:
    """The benchmark's own server (fsync on), started when it is not running."""
    return start_server(*bench_server("54330", "/tmp/maillage-pgbench"), fsync=True)


def fresh_database(admin: str, keep: bool) -> contextlib.AbstractContextManager[str]:
    """A new database on the benchmark's server, dropped at the end unless `keep`."""
    return databases.fresh_database(admin, "hub_checks", keep=keep)


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# --- the data -------------------------------------------------------------------------------

@dataclass
class Seeded:
    legs: int
    due: Counter[str]  # kind -> legs due now
    stale: Counter[str]  # kind -> legs stuck open past a deadline that fired already
    statuses: Counter[str]
    rows: dict[str, int] = field(default_factory=dict)
    steps: list[tuple[str, int, float]] = field(default_factory=list)  # what, rows, seconds
    seconds: float = 0.0


# Places in a referral row (REFERRAL_COLUMNS).  While a row is made, its moments are ages:
# seconds before now (negative: ahead); `Legs.finish` turns them into naive UTC datetimes.
(ID, CHAIN, PARTICIPANT, FROM_ORG, TO_ORG, PATHWAY, STAGE, PRIORITY, REASON, NEEDS_, STATUS,
 VERSION_, FORWARDED_FROM, FORWARDED_TO, DECLINE, OUTCOME, CANCEL, CREATED, UPDATED, ACKNOWLEDGED,
 ACCEPTED, STARTED, CLOSED, ACKNOWLEDGE_BY, DECIDE_BY, START_BY, EXPIRE_BY) = range(27)
MOMENTS = tuple(range(CREATED, EXPIRE_BY + 1))
MILESTONE_PLACES = (CREATED, ACKNOWLEDGED, ACCEPTED, STARTED)
# The check whose allowance separates a milestone from the next one.
GAP_CHECKS = ("acknowledge", "decide", "start")
NEXT_CHECK = {"sent": "acknowledge", "acknowledged": "decide", "accepted": "start"}


class Legs:
    """Makes referral rows: the history, the legs due now, the legs stuck open."""

    def __init__(self, rng: random.Random, now: datetime, organizations: list[uuid.UUID],
                 participants: list[tuple[uuid.UUID, uuid.UUID]], keyring: crypto.KeyRing
                 ) -> None:
        self.rng, self.now = rng, naive(now)
        self.random, self.uniform = rng.random, rng.uniform
        self.organizations, self.participants = organizations, participants
        self.reasons = [keyring.encrypt(r) for r in REASONS for _ in range(3)]
        self.needs = [keyring.encrypt(json.dumps(n)) for n in NEEDS for _ in range(2)]
        # Seconds allowed per check (DEFAULT_POLICY's business days, as calendar days).
        self.allow = {priority: {check: days[priority] * DAY
                                 for check, days in DEFAULT_POLICY.items()}
                      for priority in ("routine", "urgent")}

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def pick(self, choices: tuple[Any, ...] | list[Any]) -> Any:
        return choices[int(self.random() * len(choices))]

    def new(self, leg_id: uuid.UUID, predecessor: list[Any] | None = None) -> list[Any]:
        random_ = self.random
        if predecessor is None:
            participant_id, from_org = self.pick(self.participants)
            chain_id, forwarded_from = leg_id, None
        else:
            participant_id, from_org = predecessor[PARTICIPANT], predecessor[TO_ORG]
            chain_id, forwarded_from = predecessor[CHAIN], predecessor[ID]
        to_org = self.pick(self.organizations)
        while to_org == from_org:
            to_org = self.pick(self.organizations)
        pathway = self.pick(PATHWAYS)
        stage = ("exploration" if random_() < 0.5 else "prevalidation") \
            if pathway in ENTREPRENEURSHIP else None
        row: list[Any] = [None] * len(REFERRAL_COLUMNS)
        row[ID], row[CHAIN], row[PARTICIPANT], row[FROM_ORG], row[TO_ORG] = (
            leg_id, chain_id, participant_id, from_org, to_org)
        row[PATHWAY], row[STAGE] = pathway, stage
        row[PRIORITY] = "urgent" if random_() < 0.15 else "routine"
        row[REASON] = self.pick(self.reasons) if random_() < 0.7 else None
        row[NEEDS_], row[FORWARDED_FROM] = self.pick(self.needs), forwarded_from
        return row

    def finish(self, row: list[Any]) -> tuple[Any, ...]:
        now = self.now
        for place in MOMENTS:
            age = row[place]
            if age is not None:
                row[place] = now - timedelta(seconds=age)
        return tuple(row)

    def deadlines(self, row: list[Any]) -> None:
        allow = self.allow[row[PRIORITY]]
        row[ACKNOWLEDGE_BY] = row[CREATED] - allow["acknowledge"]
        row[EXPIRE_BY] = row[CREATED] - 2 * allow["acknowledge"]
        if row[ACKNOWLEDGED] is not None:
            row[DECIDE_BY] = row[ACKNOWLEDGED] - allow["decide"]
        if row[ACCEPTED] is not None:
            row[START_BY] = row[ACCEPTED] - allow["start"]

    def open_leg(self, row: list[Any], status: str, last_age: float) -> None:
        """An open leg whose last milestone (sent, acknowledged, accepted, started) is
        `last_age` seconds old, each earlier one within its allowance of the next."""
        allow = self.allow[row[PRIORITY]]
        count = OPEN_MILESTONES[status]
        age = row[MILESTONE_PLACES[count - 1]] = last_age
        for index in range(count - 1, 0, -1):
            age += self.uniform(HOUR, 0.9 * allow[GAP_CHECKS[index - 1]])
            row[MILESTONE_PLACES[index - 1]] = age
        row[STATUS], row[VERSION_], row[UPDATED] = status, VERSION[status], last_age
        self.deadlines(row)

    def deadline_leg(self, row: list[Any], kind: str, status: str,
                     ages: tuple[float, float]) -> float:
        """An open leg in `status` whose `kind` deadline passed `ages` seconds ago; returns
        the deadline's age."""
        deadline_age = self.uniform(*ages)
        self.open_leg(row, status, deadline_age + self.allow[row[PRIORITY]][kind])
        return deadline_age

    def history_open(self, row: list[Any], status: str) -> None:
        """Open, every deadline still ahead (in_progress legs have none left)."""
        if status == "in_progress":
            last_age = self.uniform(HOUR, 180 * DAY)
        else:
            last_age = self.uniform(0, self.allow[row[PRIORITY]][NEXT_CHECK[status]] - HOUR)
        self.open_leg(row, status, last_age)

    def closed(self, row: list[Any], status: str, created_age: float | None) -> None:
        """A closed leg: its milestones from its creation (placed in the last 3 years when
        `created_age` is None), squeezed to end before now when a forwarded leg starts late."""
        uniform = self.uniform
        offsets: list[tuple[int, float]] = []  # (place, seconds after creation)
        if status == "expired":
            offsets.append((CLOSED, 2 * self.allow[row[PRIORITY]]["acknowledge"]))
        else:
            elapsed = 0.0
            if status in ("completed", "declined", "forwarded") or self.random() < 0.5:
                elapsed += uniform(0.1, 2) * DAY
                offsets.append((ACKNOWLEDGED, elapsed))
            if status == "completed":
                for place, low, high in ((ACCEPTED, 0.5, 4), (STARTED, 1, 9), (CLOSED, 14, 180)):
                    elapsed += uniform(low, high) * DAY
                    offsets.append((place, elapsed))
            else:
                low, high = {"declined": (0.5, 4), "forwarded": (0.2, 3)}.get(status, (0.1, 10))
                offsets.append((CLOSED, elapsed + uniform(low, high) * DAY))
        total = offsets[-1][1]
        if created_age is None:
            created_age = total + uniform(HOUR, HISTORY_SECONDS - total)
        scale = min(1.0, max(created_age - HOUR, 60.0) / total)
        row[CREATED] = created_age
        for place, offset in offsets:
            row[place] = created_age - offset * scale
        row[STATUS], row[UPDATED] = status, row[CLOSED]
        row[VERSION_] = VERSION[status] + (status == "cancelled" and row[ACKNOWLEDGED] is not None)
        if status == "completed":
            row[OUTCOME] = self.pick(OUTCOMES)
        elif status == "declined":
            row[DECLINE] = self.pick(DECLINE_REASONS)
        elif status == "cancelled":
            row[CANCEL] = self.pick(CANCEL_REASONS)
        self.deadlines(row)


def exact_counts(total: int, shares: tuple[tuple[str, str, float], ...]) -> list[tuple[str, str]]:
    """`total` (kind, status) pairs split by share, the remainder to the first."""
    counts = [int(total * share) for _, _, share in shares]
    counts[0] += total - sum(counts)
    return [(kind, status) for (kind, status, _), n in zip(shares, counts, strict=True)
            for _ in range(n)]


def referral_rows(legs: Legs, total: int, due: int, stale: int, seeded: Seeded
                  ) -> Iterator[tuple[Any, ...]]:
    """`total` legs: `due` past a deadline now and `stale` stuck past one that fired already,
    at random places among the history."""
    rng = legs.rng
    specials = exact_counts(due, DUE_KINDS) + exact_counts(stale, STALE_KINDS)
    places = dict(zip(rng.sample(range(total), len(specials)),
                      [(i < due, kind, status) for i, (kind, status) in enumerate(specials)],
                      strict=True))
    history_left = total - len(places)
    statuses = [*HISTORY_SHARES, "completed"]
    cumulative = list(itertools.accumulate([*HISTORY_SHARES.values(),
                                            1 - sum(HISTORY_SHARES.values())]))
    next_cumulative = list(itertools.accumulate(SUCCESSOR_WEIGHTS))
    successor: list[Any] | None = None  # the next leg of a forwarded one, made next
    for position in range(total):
        special = places.get(position)
        if special is not None:
            is_due, kind, status = special
            row = legs.new(legs.uuid())
            deadline_age = legs.deadline_leg(row, kind, status, DUE_AGE if is_due else STALE_AGE)
            if is_due:
                seeded.due[kind] += 1
            else:  # its deadline_missed event happened: one more version
                row[VERSION_] += 1
                row[UPDATED] = deadline_age - FIRED_AFTER.total_seconds()
                seeded.stale[kind] += 1
        else:
            if successor is not None:
                row, created_age = successor, successor[CREATED]
                status = SUCCESSOR_STATUSES[min(bisect.bisect(next_cumulative, legs.random()),
                                                len(SUCCESSOR_STATUSES) - 1)]
            else:
                row, created_age = legs.new(legs.uuid()), None
                status = statuses[min(bisect.bisect(cumulative, legs.random()),
                                      len(statuses) - 1)]
            successor = None
            if status == "forwarded" and history_left < 2:
                status = "completed"  # no room left for the next leg
            if status in OPEN_MILESTONES:
                legs.history_open(row, status)
            else:
                legs.closed(row, status, created_age)
            if status == "forwarded":
                successor = legs.new(legs.uuid(), predecessor=row)
                successor[CREATED] = row[CLOSED]
                row[FORWARDED_TO] = successor[ID]
            history_left -= 1
        seeded.statuses[row[STATUS]] += 1
        yield legs.finish(row)
    assert successor is None


# --- the bulk loader ------------------------------------------------------------------------

class Progress:
    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done = what, total, 0
        self.started = self.last = time.perf_counter()

    def add(self, rows: int = 1) -> None:
        self.done += rows
        now = time.perf_counter()
        if now - self.last >= 2 or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            log(f"    {self.what}: {self.done:>9,} / {self.total:,} rows, {rate:,.0f} rows/s")

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def schema_definitions(cursor: psycopg.Cursor[Any]) -> list[str]:
    """Every index and constraint of the public schema, as PostgreSQL prints them."""
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c "
        "ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' "
        "UNION ALL SELECT conrelid::regclass::text || ' ' || conname || ' ' "
        "|| pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace")
    return sorted(row[0] for row in cursor.fetchall())


@contextmanager
def bulk_mode(cursor: psycopg.Cursor[Any], seeded: Seeded) -> Iterator[None]:
    """Drop the secondary indexes, unique and foreign-key constraints of BULK_TABLES (primary
    keys stay), then make them again from their definitions: one sort per index instead of a
    million random inserts, one join per foreign key instead of a lookup per row.  Checks
    that the schema is exactly as before."""
    before = schema_definitions(cursor)
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE contype IN ('f', 'u') AND conrelid::regclass::text = ANY(%s) "
        "ORDER BY contype", [list(BULK_TABLES)])
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid::regclass::text = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint "
        "k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))",
        [list(BULK_TABLES)])
    indexes = cursor.fetchall()
    for table, name, _, _ in constraints:  # foreign keys first (ORDER BY contype: f, u)
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    yield
    for table, name, kind, definition in reversed(constraints):  # unique first
        if kind == "u":
            timed(seeded, f"unique {name}", 0,
                  lambda t=table, n=name, d=definition: cursor.execute(
                      f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}'))
    for name, definition in indexes:
        timed(seeded, f"index {name}", 0, lambda d=definition: cursor.execute(d))
    for table, name, kind, definition in constraints:
        if kind == "f":
            timed(seeded, f"foreign key {name} (checks every row)", 0,
                  lambda t=table, n=name, d=definition: cursor.execute(
                      f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}'))
    after = schema_definitions(cursor)
    if after != before:
        raise RuntimeError(f"schema differs after the load: {set(before) ^ set(after)}")


def timed(seeded: Seeded, what: str, rows: int, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    rows = rows or max(getattr(result, "rowcount", 0) or 0, 0)
    seeded.steps.append((what, rows, seconds))
    rate = f", {rows / seconds:,.0f} rows/s" if rows else ""
    log(f"    {what}: {rows:,} rows in {seconds:.1f} s{rate}" if rows
        else f"    {what}: {seconds:.1f} s")
    return result


def copy_rows(cursor: psycopg.Cursor[Any], table: str, columns: tuple[str, ...],
              rows: Iterator[tuple[Any, ...]] | list[tuple[Any, ...]], total: int,
              seeded: Seeded) -> None:
    """Binary COPY (the column types read from the catalogue), with progress."""
    cursor.execute("SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t "
                   "ON t.oid = a.atttypid WHERE a.attrelid = %s::regclass AND a.attnum > 0",
                   [table])
    types = dict(cursor.fetchall())
    progress = Progress(f"COPY {table}", total)
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([types[column] for column in columns])
        for row in rows:
            copy.write_row(row)
            progress.add()
    seeded.steps.append((f"COPY {table}", progress.done, progress.seconds))
    seeded.rows[table] = progress.done


def seed(url: str, total: int, due: int, stale_share: float, now: datetime,
         keyring: crypto.KeyRing, rng: random.Random, organizations: int = 200,
         participants: int = 1000, contacts: int = 0) -> Seeded:
    """Organizations, participants and their consents, then the legs, the history's checks
    and events, by COPY and INSERT ... SELECT; then VACUUM ANALYZE."""
    stale = round((total - due) * stale_share)
    seeded = Seeded(total, Counter(), Counter(), Counter())
    started = time.perf_counter()
    moment = naive(now)
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        cursor = connection.cursor()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SET work_mem = '256MB'")

        org_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(organizations)]
        org_rows = [(org_id, f"Organisme {i:03d}",
                     "coordination" if i < 5 else rng.choice(KINDS),
                     f"{rng.randint(1, 17):02d}", rng.choice(("open",) * 7 + ("waitlist", "full")),
                     moment - timedelta(days=1500), validated, validated)
                    for i, org_id in enumerate(org_ids)
                    for validated in [moment - timedelta(days=rng.uniform(1, 300))]]
        copy_rows(cursor, "organizations", ("id", "name", "kind", "region", "capacity",
                                            "created_at", "last_validated_at", "updated_at"),
                  org_rows, len(org_rows), seeded)
        serving = [row[0] for row in org_rows if row[2] != "coordination"]
        if contacts:  # directory contacts with an email: each missed deadline mails them
            copy_rows(cursor, "directory_contacts", ("id", "organization_id", "name", "role",
                                                     "email"),
                      [(uuid.UUID(int=rng.getrandbits(128), version=4), org_id, f"Accueil {n}",
                        "Accueil", f"accueil{n}.{i:03d}@example.org")
                       for i, org_id in enumerate(org_ids) for n in range(contacts)],
                      contacts * len(org_ids), seeded)

        people = []
        given = ("Amina", "Jean", "Marie-Ève", "Mohamed", "Chloé", "Luis", "Fatou", "Olivier")
        family = ("Benali", "Tremblay", "Gagnon", "Nguyen", "Diallo", "Roy", "Côté", "Pérez")
        for _ in range(participants):
            first, last = rng.choice(given), rng.choice(family)
            year = rng.randint(1960, 2005)
            people.append((uuid.UUID(int=rng.getrandbits(128), version=4), rng.choice(serving),
                           keyring.encrypt(first), keyring.encrypt(last),
                           rng.choice(("fr", "fr", "en", "es", "ar")), year,
                           f"{rng.randint(1, 17):02d}", moment - timedelta(days=1200),
                           crypto.identity_index(keyring, first, last, year)))
        copy_rows(cursor, "participants", (
            "id", "organization_id", "given_name", "family_name", "preferred_language",
            "birth_year", "region", "created_at", "identity_index"), people, len(people), seeded)
        # Each participant: a referral_sharing consent that expired a year ago (its ending
        # recorded by the scheduler), and the current one, network-wide, valid for a year.
        consents, endings = [], []
        for person in people:
            for granted_days_ago in (730, rng.uniform(1, 300)):
                consent_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                granted = moment - timedelta(days=granted_days_ago)
                consents.append((consent_id, person[0], "referral_sharing", True, "written",
                                 "bench", person[1], granted, granted + timedelta(days=365)))
                if granted_days_ago == 730:
                    endings.append((consent_id, "expired", granted + timedelta(days=365),
                                    "scheduler"))
        copy_rows(cursor, "consents", ("id", "participant_id", "purpose", "network_wide",
                                       "evidence", "recorded_by", "recorded_by_organization_id",
                                       "granted_at", "expires_at"), consents, len(consents),
                  seeded)
        copy_rows(cursor, "consent_endings", ("consent_id", "kind", "at", "recorded_by"),
                  endings, len(endings), seeded)

        legs = Legs(rng, now, serving, [(p[0], p[1]) for p in people], keyring)
        with bulk_mode(cursor, seeded):
            copy_rows(cursor, "referrals", REFERRAL_COLUMNS,
                      referral_rows(legs, total, due, stale, seeded), total, seeded)
            params = {"now": moment, "stale": moment - STALE_MIN_AGE, "after": FIRED_AFTER}
            history_checks = (
                ("followup_30", "closed_at + interval '30 days'",
                 "status = 'completed' AND closed_at <= %(now)s - interval '30 days'"),
                ("followup_180", "closed_at + interval '180 days'",
                 "status = 'completed' AND closed_at <= %(now)s - interval '180 days'"),
                ("acknowledge", "acknowledge_by", "status = 'expired'"),
                ("expire", "expire_by", "status = 'expired'"),
                ("decide", "decide_by", "status = 'acknowledged' AND decide_by <= %(stale)s"),
                ("start", "start_by", "status = 'accepted' AND start_by <= %(stale)s"),
                # Every leg accepted long enough ago was asked about (hub.followups.checkins).
                (checkins.KIND, f"accepted_at + interval '{checkins.ASK_AFTER_BUSINESS_DAYS} "
                 "days'", f"accepted_at <= %(now)s - interval "
                 f"'{checkins.ASK_AFTER_BUSINESS_DAYS} days'"))
            checks_rows = 0
            for kind, due_at, where in history_checks:
                done = timed(seeded, f"INSERT referral_checks {kind} (history)", 0,
                             lambda k=kind, d=due_at, w=where: cursor.execute(
                                 f"INSERT INTO referral_checks (referral_id, kind, due_at, "
                                 f"fired_at) SELECT id, '{k}', {d}, {d} + %(after)s "
                                 f"FROM referrals WHERE {w}", params))
                checks_rows += done.rowcount
            seeded.rows["referral_checks"] = checks_rows
            timed(seeded, "INSERT events + event_audience (each leg's last event)", 3 * total,
                  lambda: cursor.execute(HISTORY_EVENTS, params))
            cursor.execute("SELECT (SELECT count(*) FROM events), "
                           "(SELECT count(*) FROM event_audience)")
            seeded.rows["events"], seeded.rows["event_audience"] = cursor.fetchone() or (0, 0)
            timed(seeded, "UPDATE referrals: due-at columns of the checks still to come", 0,
                  lambda: due_at_columns(cursor, moment))

        timed(seeded, "VACUUM ANALYZE", 0, lambda: cursor.execute("VACUUM ANALYZE"))
    seeded.seconds = time.perf_counter() - started
    assert sum(seeded.due.values()) == due and seeded.legs == sum(seeded.statuses.values())
    return seeded


def due_at_columns(cursor: psycopg.Cursor[Any], moment: datetime) -> None:
    """What `hub.followups.deadlines.arm_checks` would have set and the checks left: the due-at
    column of each check still to come (the revision that added them fills them the same way)."""
    cursor.execute("""
        UPDATE referrals SET deadline_due_at = CASE status
            WHEN 'sent' THEN acknowledge_by WHEN 'acknowledged' THEN decide_by ELSE start_by END
        WHERE status IN ('sent', 'acknowledged', 'accepted')
          AND NOT EXISTS (SELECT 1 FROM referral_checks c WHERE c.referral_id = referrals.id
                          AND c.kind = CASE referrals.status WHEN 'sent' THEN 'acknowledge'
                                       WHEN 'acknowledged' THEN 'decide' ELSE 'start' END)""")
    fired = ("EXISTS (SELECT 1 FROM referral_checks c WHERE c.referral_id = referrals.id "
             "AND c.kind = '{}')")
    cursor.execute(f"""
        UPDATE referrals SET followup_due_at = CASE
            WHEN NOT {fired.format('followup_30')} THEN closed_at + interval '30 days'
            ELSE closed_at + interval '180 days' END
        WHERE status = 'completed' AND NOT {fired.format('followup_180')}""")
    cursor.execute(f"""
        SELECT id, accepted_at FROM referrals
        WHERE status IN ('accepted', 'in_progress') AND accepted_at > %(since)s
          AND NOT {fired.format(checkins.KIND)}""", {"since": moment - checkins.ASK_UNTIL})
    asked = [(leg_id, naive(add_business_days(accepted.replace(tzinfo=UTC),
                                              checkins.ASK_AFTER_BUSINESS_DAYS)))
             for leg_id, accepted in cursor.fetchall()]
    cursor.execute("""
        UPDATE referrals SET checkin_due_at = due.at
        FROM unnest(%(ids)s::uuid[], %(ats)s::timestamp[]) AS due (id, at)
        WHERE referrals.id = due.id""",
                   {"ids": [a[0] for a in asked], "ats": [a[1] for a in asked]})


# One event per leg, its last: type, source and sequence (= version) as the hub would have
# recorded them, its audience both organizations; its data cut down to the leg's ids, status
# and version (no check reads the history's events).  Earlier events of each leg are left out.
HISTORY_EVENTS = """
WITH appended AS (
  INSERT INTO events (transaction_order, id, type, source, subject, sequence, time, actor, data)
  SELECT pg_current_xact_id()::text::bigint,
         upper(substr(md5(r.id::text), 1, 26)),
         CASE WHEN (r.status = 'acknowledged' AND r.decide_by <= %(stale)s)
                OR (r.status = 'accepted' AND r.start_by <= %(stale)s)
              THEN 'referral.deadline_missed'
              WHEN r.status = 'in_progress' THEN 'referral.started'
              ELSE 'referral.' || r.status END,
         CASE WHEN r.status IN ('sent', 'cancelled')
              THEN '/organizations/' || r.from_organization_id
              WHEN r.status = 'expired' OR (r.status = 'acknowledged' AND r.decide_by <= %(stale)s)
                OR (r.status = 'accepted' AND r.start_by <= %(stale)s) THEN '/hub'
              ELSE '/organizations/' || r.to_organization_id END,
         'referrals/' || r.id, r.version, r.updated_at, 'bench:history',
         json_build_object('referral', json_build_object(
           'id', r.id, 'from_organization_id', r.from_organization_id,
           'to_organization_id', r.to_organization_id, 'status', r.status,
           'version', r.version))
  FROM referrals r ORDER BY r.updated_at
  RETURNING position, data
)
INSERT INTO event_audience (organization_id, event_position)
SELECT unnest(ARRAY[(data -> 'referral' ->> 'from_organization_id')::uuid,
                    (data -> 'referral' ->> 'to_organization_id')::uuid]), position
FROM appended
"""


# --- measuring ------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy, from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq = (
        int(v) for v in Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # ended, or not on this machine
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Cpu:
    """Where the wall time of a stretch went, in seconds."""

    wall: float = 0.0
    client: float = 0.0  # this process (the hub's code, SQLAlchemy, psycopg)
    server: float = 0.0  # the PostgreSQL backends of this process's connections
    machine: float = 0.0  # every CPU of the machine: the rest is other processes

    def __add__(self, other: Cpu) -> Cpu:
        return Cpu(self.wall + other.wall, self.client + other.client,
                   self.server + other.server, self.machine + other.machine)

    def line(self) -> str:
        cpus = os.cpu_count() or 1
        others = max(self.machine - self.client - self.server, 0.0)
        waiting = max(self.wall - self.client - self.server, 0.0)
        return (f"wall {self.wall:,.1f} s = CPU of this process {self.client:,.1f} s + of its "
                f"PostgreSQL backends {self.server:,.1f} s + waiting {waiting:,.1f} s "
                f"(commits, CPUs busy elsewhere); the machine's {cpus} CPUs "
                f"{100 * self.machine / max(self.wall * cpus, 1e-9):.0f} % busy, "
                f"{100 * others / max(self.wall * cpus, 1e-9):.0f} % by other processes")


class CpuMeter:
    """CPU time of this process, of the PostgreSQL backends serving its engine (their pids
    taken at connect: the server runs on this machine), and of the whole machine."""

    def __init__(self, engine: Engine) -> None:
        self.backends: set[int] = set()
        event.listen(engine, "connect", self._connected)

    def _connected(self, dbapi_connection: Any, _record: Any) -> None:
        self.backends.add(dbapi_connection.info.backend_pid)

    def sample(self) -> Cpu:
        return Cpu(time.perf_counter(), time.process_time(),
                   sum(process_cpu_seconds(pid) for pid in self.backends),
                   machine_busy_seconds())

    def since(self, start: Cpu) -> Cpu:
        now = self.sample()
        return Cpu(now.wall - start.wall, now.client - start.client,
                   now.server - start.server, now.machine - start.machine)

@dataclass
class Pass:
    """One pass of a tick (the firing checks), or its digest step, and where its time went."""

    seconds: float
    handled: dict[str, int]
    check_seconds: dict[str, float]  # inside each check function (its commit excluded)
    due_queries: list[tuple[str, float, int]]  # kind, seconds, rows: the SELECT ... FOR UPDATE
    statements: Counter[str]
    statement_seconds: dict[str, float]  # round trips, by kind of statement
    digest: bool = False  # the digest step after the passes (`hub.followups.tick.DIGESTS`)
    started: float = 0.0

    @property
    def work(self) -> int:
        return sum(max(n, 0) for n in self.handled.values())


def statement_kind(statement: str) -> str:
    head = statement.lstrip()[:12].upper()
    if head.startswith("WITH") and "DELETE FROM deadline_digest_queue" in statement:
        return "digest: take the queued misses (1 statement)"
    if head.startswith("WITH"):
        return "event append (1 statement)"
    word = head.split(None, 1)[0] if head else "?"
    if word == "SELECT" and "FOR UPDATE" in statement:
        return "due query (SELECT ... FOR UPDATE)"
    if word == "INSERT" and "referral_checks" in statement:
        return "INSERT referral_checks"
    if word == "UPDATE" and "referrals" in statement:
        return "UPDATE referrals (version, due-at)"
    if word == "INSERT":
        table = statement.split(None, 3)[2] if len(statement.split(None, 3)) > 2 else "?"
        return f"INSERT {table}"
    if word == "SELECT" and "pg_current_xact_id" in statement:
        return "SELECT transaction id (event append)"
    return word


class Probe:
    """Times a tick of the scheduler and, inside it, each pass (from one
    `hub.followups.tick.pending` to the next), the digest step, each check and each statement
    (due queries labelled with their check): wraps `hub.followups.tick.pending` and the
    functions of `hub.followups.tick.CHECKS` in this process (the hub's code runs as is) and
    listens to the engines' cursor events.  With
    `capture` set, keeps every SELECT sent, to be explained."""

    def __init__(self, *engines: Engine) -> None:
        self.engines = engines
        self.original_checks = dict(checks.CHECKS)
        self.original_pending = checks.pending
        self.pass_: Pass | None = None
        self.passes: list[Pass] = []
        self.label = ""  # the check running (and the due query's kind)
        self.capture: list[tuple[str, str, Any]] | None = None
        self._started: dict[int, float] = {}

    def __enter__(self) -> Probe:
        for name, check in self.original_checks.items():
            checks.CHECKS[name] = self._timed_check(name, check)
        checks.pending = self._pending  # type: ignore[assignment]
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._before)
            event.listen(engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_exc: object) -> None:
        checks.CHECKS.update(self.original_checks)
        checks.pending = self.original_pending  # type: ignore[assignment]
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._before)
            event.remove(engine, "after_cursor_execute", self._after)

    def _next_pass(self, digest: bool = False) -> None:
        """The pass under way ends; the next one (or the digest step) starts."""
        now = time.perf_counter()
        if self.pass_ is not None:
            self.pass_.seconds = now - self.pass_.started
            self.passes.append(self.pass_)
        self.pass_ = Pass(0.0, {}, {}, [], Counter(), {}, digest=digest, started=now)

    def _pending(self, sessions: Callable[[], Session], now: datetime) -> set[str]:
        self._next_pass()  # a pass starts by asking which checks have work
        self.label = "pending: which checks have work"
        return self.original_pending(sessions, now)

    def _timed_check(self, name: str, check: checks.Check) -> checks.Check:
        def timed_check(session: Session, now: datetime) -> int:
            if name in checks.DIGESTS:
                self._next_pass(digest=True)
            started = time.perf_counter()
            self.label = name
            handled = -1
            try:
                handled = check(session, now)
                return handled
            finally:
                if self.pass_ is not None:
                    self.pass_.check_seconds[name] = time.perf_counter() - started
                    self.pass_.handled[name] = handled
        return timed_check

    def _before(self, _conn: Any, cursor: Any, statement: str, parameters: Any,
                *_args: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()
        if self.capture is not None and statement.lstrip().upper().startswith("SELECT"):
            self.capture.append((self.label, statement, parameters))

    def _after(self, _conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        started = self._started.pop(id(cursor), None)
        if self.pass_ is not None and started is not None:
            kind = statement_kind(statement)
            if "FOR UPDATE" in statement:
                self.pass_.due_queries.append(
                    (self.label, time.perf_counter() - started, max(cursor.rowcount, 0)))
            self.pass_.statements[kind] += 1
            self.pass_.statement_seconds[kind] = (self.pass_.statement_seconds.get(kind, 0.0)
                                                  + time.perf_counter() - started)

    def run_tick(self, tick: Callable[[], dict[str, int] | None]) -> Tick:
        """One tick of the scheduler (`CheckScheduler.tick`: leadership, passes, digest)."""
        self.passes, self.pass_ = [], None
        started = time.perf_counter()
        handled = tick()
        seconds = time.perf_counter() - started
        self._next_pass()
        done, self.passes, self.pass_ = self.passes, [], None
        if handled is None:
            raise RuntimeError("the benchmark's scheduler does not lead (advisory lock held?)")
        return Tick(seconds, handled, done)


@dataclass
class Tick:
    """One tick of the scheduler: its wall time, what it handled, its passes and digest."""

    seconds: float
    handled: dict[str, int]
    passes: list[Pass]

    @property
    def work(self) -> int:
        return sum(max(n, 0) for n in self.handled.values())

    @property
    def digests(self) -> list[Pass]:
        return [p for p in self.passes if p.digest]


def database_counts(engine: Engine, now: datetime, after_position: int) -> dict[str, Any]:
    with engine.connect() as connection:
        events = dict(connection.execute(text(
            "SELECT type, count(*) FROM events WHERE position > :p GROUP BY type"),
            {"p": after_position}).all())
        fired = dict(connection.execute(text(
            "SELECT kind, count(*) FROM referral_checks WHERE fired_at = :now GROUP BY kind"),
            {"now": naive(now)}).all())
        outbox = connection.scalar(text(
            "SELECT count(*) FROM outbox WHERE event_position > :p"), {"p": after_position})
        touched = connection.scalar(text(
            "SELECT count(*) FROM referrals WHERE updated_at = :now"), {"now": naive(now)})
        receivers = connection.scalar(text(
            "SELECT count(DISTINCT data -> 'referral' ->> 'to_organization_id') FROM events "
            "WHERE position > :p AND type = 'referral.deadline_missed'"), {"p": after_position})
    listed = mails = 0
    with Session(engine) as session:  # the digests, decrypted: how many legs each lists
        for mail in session.scalars(select(OutgoingMail).where(
                OutgoingMail.dedupe_key.like("deadline_digest:%"))):
            mails += 1
            body = mail.body_text
            more = re.search(r"… (?:et|and) (\d+|une autre|one more)", body)
            listed += body.count("/legs/") + (
                0 if more is None else 1 if not more.group(1).isdigit() else int(more.group(1)))
    return {"events": events, "referral_checks": fired, "outbox": outbox,
            "legs_updated": touched, "mails": mails, "legs_in_mails": listed,
            "receivers_missed": receivers}


def explain_due(engine: Engine, sessions: Callable[[], Session], now: datetime) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement `leg_checks.deadlines_due` sends (captured
    as sent, then explained in a transaction that is rolled back)."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    with sessions() as session:
        event.listen(engine, "before_cursor_execute", capture)
        try:
            leg_checks.deadlines_due(session, now, leg_checks.BATCH)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        session.rollback()
    statement, parameters = next(s for s in sent if "FOR UPDATE" in s[0])
    return explain_plan(engine, statement, parameters)


def explain_plan(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction rolled back (the due queries lock rows)."""
    with engine.connect() as connection:
        plan = [row[0] for row in connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)]
        connection.rollback()
    return plan


SCAN = re.compile(r"(Seq Scan|Bitmap Heap Scan|Bitmap Index Scan|Index Only Scan|Index Scan)"
                  r"(?: using (\S+))? on (\S+).*actual time=\S+ rows=(\d+) loops=(\d+)")


def plan_summary(plan: list[str]) -> tuple[float, str]:
    """(execution ms, the scans with the rows they read)."""
    milliseconds = next((float(m.group(1)) for line in plan
                         if (m := re.search(r"Execution Time: ([\d.]+) ms", line))), 0.0)
    scans = []
    for number, line in enumerate(plan):
        if m := SCAN.search(line):
            how, index, table, rows, loops = m.groups()
            read = int(rows) * int(loops)
            for detail in plan[number + 1:]:  # the node's own lines, up to the next node
                if "->" in detail:
                    break
                if removed := re.search(r"Rows Removed by Filter: (\d+)", detail):
                    read += int(removed.group(1))
            what = (f"{table} (bitmap)" if how == "Bitmap Index Scan"
                    else f"{index or how} on {table}")
            scans.append(f"{what}: {read:,} rows")
    return milliseconds, "; ".join(scans)


@dataclass
class Phase:
    label: str
    legs: int
    seeded: Seeded
    warm_up: Tick
    full: Tick
    idle: list[Tick]
    counts: dict[str, Any]
    counts_after_idle: dict[str, Any]
    plans: dict[str, list[str]]
    idle_plans: list[tuple[str, float, str, list[str]]]  # check, ms, scans, plan
    full_cpu: Cpu
    idle_cpu: Cpu

    @property
    def full_seconds(self) -> float:
        return self.full.seconds

    @property
    def passes(self) -> list[Pass]:
        """The full tick's passes of the firing checks (its digest step left out)."""
        return [p for p in self.full.passes if not p.digest]

    @property
    def handled(self) -> Counter[str]:
        return Counter({k: max(v, 0) for k, v in self.full.handled.items()})

    @property
    def failures(self) -> list[str]:
        return [f"{name} failed (the scheduler logged it)" for tick in (self.full, *self.idle)
                for p in tick.passes for name, n in p.handled.items() if n < 0]

    def idle_ms(self) -> float:
        return statistics.median(p.seconds for p in self.idle) * 1000


@dataclass
class Database:
    """One of the two databases, seeded, while it is measured."""

    label: str
    legs: int
    now: datetime
    seeded: Seeded
    engine: Engine
    sessions: Callable[[], Session]
    meter: CpuMeter
    scheduler: CheckScheduler | None = None
    moment: datetime | None = None  # what the scheduler's clock says

    def tick(self, probe: Probe, at: datetime) -> Tick:
        """A tick of the hub's scheduler (`CheckScheduler.tick`) at `at`."""
        if self.scheduler is None:
            self.scheduler = CheckScheduler(self.engine, self.sessions,
                                            clock=lambda: self.moment or self.now)
        self.moment = at
        return probe.run_tick(self.scheduler.tick)


def run_phases(admin: str, args: argparse.Namespace, keyring: crypto.KeyRing) -> list[Phase]:
    """Seed both databases, then measure them turn about: their full ticks one after the
    other, their ticks with nothing due alternating (small, large, small, large...)."""
    with contextlib.ExitStack() as stack:
        dbs = []
        for label, legs in (("small", args.small_legs), ("large", args.legs)):
            log(f"[{label}] fresh database, migrated with hub.ops.upgrade_database")
            url = stack.enter_context(fresh_database(admin, args.keep))
            upgrade_database(url)
            now = datetime.now(UTC)
            log(f"[{label}] bulk load: {legs:,} legs, {args.due:,} past a deadline at "
                f"{now:%H:%M:%S} UTC")
            seeded = seed(url, legs, args.due, args.stale_share if legs > args.due else 0.0,
                          now, keyring, random.Random(f"{args.seed}-{label}"),
                          contacts=args.contacts)
            log(f"[{label}] loaded in {seeded.seconds:.0f} s")
            engine = make_engine(url)
            stack.callback(engine.dispose)
            db = Database(label, legs, now, seeded, engine,
                          sessionmaker(engine, expire_on_commit=False), CpuMeter(engine))
            stack.callback(lambda db=db: db.scheduler and db.scheduler.shutdown())
            dbs.append(db)
        return measure(dbs, args)


def measure(dbs: list[Database], args: argparse.Namespace) -> list[Phase]:
    plans = {db.label: {f"deadlines_missed, {args.due:,} due": explain_due(
        db.engine, db.sessions, db.now)} for db in dbs}
    with Probe(*(db.engine for db in dbs)) as probe:
        warm_up, last = {}, {}
        for db in dbs:
            log(f"[{db.label}] warm-up tick at now - {WARM_UP_BEFORE.days} days (nothing due)")
            warm_up[db.label] = db.tick(probe, db.now - WARM_UP_BEFORE)
            with db.engine.connect() as connection:
                last[db.label] = connection.scalar(text("SELECT max(position) FROM events")) or 0

        log("full ticks: the scheduler's passes until one handles nothing, then its digest")
        full: dict[str, Tick] = {}
        full_cpu = {db.label: Cpu() for db in dbs}
        for db in dbs:
            start = db.meter.sample()
            full[db.label] = done = db.tick(probe, db.now)
            full_cpu[db.label] += db.meter.since(start)
            for number, p in enumerate(done.passes, 1):
                log(f"    [{db.label}] {'digest' if p.digest else f'pass {number}'}: "
                    f"{p.seconds * 1000:8.1f} ms, handled "
                    f"{ {k: v for k, v in p.handled.items() if v} }")
            log(f"    [{db.label}] tick: {done.seconds * 1000:8.1f} ms")
        counts = {db.label: database_counts(db.engine, db.now, last[db.label]) for db in dbs}

        log(f"{args.idle_ticks} ticks with nothing due in each, turn about")
        idle: dict[str, list[Tick]] = {db.label: [] for db in dbs}
        idle_cpu = {db.label: Cpu() for db in dbs}
        selects: dict[str, list[tuple[str, str, Any]]] = {}
        for tick in range(args.idle_ticks):
            for db in dbs:
                if tick == args.idle_ticks - 1:
                    probe.capture = []  # the last one keeps its SELECTs, explained below
                start = db.meter.sample()
                idle[db.label].append(db.tick(probe, db.now))
                idle_cpu[db.label] += db.meter.since(start)
                if probe.capture is not None:
                    selects[db.label], probe.capture = probe.capture, None
        for db in dbs:
            log(f"    [{db.label}] " + ", ".join(f"{p.seconds * 1000:.1f} ms"
                                                for p in idle[db.label]))
    phases = []
    for db in dbs:
        idle_plans = []
        log(f"[{db.label}] EXPLAIN ANALYZE of every SELECT of the last tick with nothing due")
        for check, statement, parameters in selects[db.label]:
            plan = explain_plan(db.engine, statement, parameters)
            idle_plans.append((check, *plan_summary(plan), plan))
        phases.append(Phase(
            db.label, db.legs, db.seeded, warm_up[db.label], full[db.label], idle[db.label],
            counts[db.label], database_counts(db.engine, db.now, last[db.label]),
            plans[db.label], idle_plans, full_cpu[db.label], idle_cpu[db.label]))
    return phases


# --- reporting ------------------------------------------------------------------------------

def verify(phase: Phase, due: int) -> list[tuple[str, bool]]:
    """What a full tick must have recorded, and what must not have happened."""
    counts, again = phase.counts, phase.counts_after_idle
    handled = phase.handled
    contacts = phase.seeded.rows.get("directory_contacts", 0) // phase.seeded.rows["organizations"]
    appended = sum(counts["events"].values())
    fired = sum(counts["referral_checks"].values())
    results = [
        (f"events appended = {appended:,} ({counts['events']})", appended == due
         and counts["events"].get("referral.deadline_missed") == due),
        (f"referral_checks rows = {fired:,} ({counts['referral_checks']})",
         fired == due and counts["referral_checks"] == dict(phase.seeded.due)),
        (f"outbox rows = {counts['outbox']:,}, legs' version moved on = "
         f"{counts['legs_updated']:,}", counts["outbox"] == due
         and counts["legs_updated"] == due),
        (f"digests queued = {counts['mails']:,}: one per contact of each of the "
         f"{counts['receivers_missed']:,} receivers with a missed deadline",
         counts["mails"] == counts["receivers_missed"] * contacts
         and handled["deadline_digests"] == counts["mails"]),
        (f"missed legs the digests list or count = {counts['legs_in_mails']:,} "
         f"(each once per contact of its receiver)",
         counts["legs_in_mails"] == due * contacts),
        (f"one digest step in the tick, after its passes: {len(phase.full.digests)}",
         len(phase.full.digests) == 1
         and all(not p.digest for p in phase.full.passes[:-1])),
        (f"the tick handled {dict(handled)}",
         handled["deadlines_missed"] == due
         and sum(handled.values()) == due + handled["deadline_digests"]),
        ("warm-up tick and ticks with nothing due recorded nothing, ran no digest, one pass",
         phase.warm_up.work == 0 and all(t.work == 0 for t in phase.idle)
         and all(len(t.passes) == 1 and not t.digests for t in (phase.warm_up, *phase.idle))
         and again == counts),
    ]
    results += [(failure, False) for failure in phase.failures]
    return results


def breakdown(p: list[Pass]) -> dict[str, Any]:
    """Where the time of these passes went, added up."""
    statements: Counter[str] = Counter()
    statement_seconds: dict[str, float] = defaultdict(float)
    check_seconds: dict[str, float] = defaultdict(float)
    for one in p:
        statements.update(one.statements)
        for kind, seconds in one.statement_seconds.items():
            statement_seconds[kind] += seconds
        for name, seconds in one.check_seconds.items():
            check_seconds[name] += seconds
    due = [q for one in p for q in one.due_queries]
    total = sum(one.seconds for one in p)
    round_trips = sum(statement_seconds.values())
    return {"seconds": total, "checks": dict(check_seconds), "statements": dict(statements),
            "statement_seconds": dict(statement_seconds), "round_trips": round_trips,
            "outside_checks": total - sum(check_seconds.values()),
            "due_queries": len(due), "due_seconds": sum(q[1] for q in due),
            "due_max": max((q[1] for q in due), default=0.0),
            "due_by_kind": {kind: [round(q[1] * 1000, 1) for q in due if q[0] == kind]
                            for kind in dict.fromkeys(q[0] for q in due)}}


def print_breakdown(label: str, b: dict[str, Any], legs_done: int) -> None:
    print(f"  {label}: {b['seconds'] * 1000:,.0f} ms in all")
    checks_ms = ", ".join(f"{name} {s * 1000:,.0f}" for name, s in b["checks"].items())
    print(f"    inside each check (ms): {checks_ms}; outside them (sessions, BEGIN/COMMIT, "
          f"run_once): {b['outside_checks'] * 1000:,.0f}")
    print(f"    due queries (SELECT ... FOR UPDATE SKIP LOCKED): {b['due_queries']}, "
          f"{b['due_seconds'] * 1000:,.0f} ms, slowest {b['due_max'] * 1000:,.1f} ms")
    print(f"    statements: {sum(b['statements'].values()):,}, round trips "
          f"{b['round_trips'] * 1000:,.0f} ms; the rest (Python, BEGIN/COMMIT, sessions) "
          f"{(b['seconds'] - b['round_trips']) * 1000:,.0f} ms")
    for kind, count in sorted(b["statements"].items(), key=lambda kv: -kv[1]):
        per_leg = f" ({count / legs_done:.1f} per leg)" if legs_done else ""
        print(f"      {kind:<38} {count:>7,}{per_leg:<16} "
              f"{b['statement_seconds'][kind] * 1000:>8,.0f} ms")


def batch_ms(phase: Phase, due: int) -> float:
    """Time inside `deadlines_missed` per batch of BATCH legs, over the full tick."""
    inside = sum(p.check_seconds.get("deadlines_missed", 0.0) for p in phase.passes)
    return inside * 1000 * leg_checks.BATCH / due


def digest_ms(phase: Phase) -> str:
    """The full tick's digest step: its time and the mails it queued."""
    step = phase.full.digests
    if not step:
        return "-"
    return f"{step[0].seconds * 1000:.0f} ({step[0].handled.get('deadline_digests', 0):,} mails)"


def report(phases: list[Phase], due: int, machine: str) -> bool:
    small, large = phases[0], phases[-1]
    print(machine)
    print()
    print("Seeded (bulk loader; the history's checks already fired):")
    for ph in phases:
        s = ph.seeded
        print(f"  {ph.label}: {s.legs:,} legs in {s.seconds:.0f} s: due now {dict(s.due)}; "
              f"stuck open, fired already {dict(s.stale)}; statuses {dict(s.statuses)}")
        print(f"    rows: {', '.join(f'{t} {n:,}' for t, n in s.rows.items())}")
    print()
    header = ("figure", *(f"{ph.legs:,} legs" for ph in phases), "target")
    full_pass = [[p for p in ph.passes if p.work] for ph in phases]
    rows = [
        ("full tick: every due leg recorded and mailed (s)",
         *(f"{ph.full_seconds:.2f}" for ph in phases), f"< {FULL_TICK_TARGET_S:g} s"),
        ("  passes of the firing checks (the last finds none)",
         *(str(len(ph.passes)) for ph in phases),
         f"scheduler: at most {scheduler.DEFAULT_CATCH_UP_ROUNDS} per tick"),
        ("  digest step after the passes (ms)", *(digest_ms(ph) for ph in phases),
         "one mail per receiver contact"),
        ("  pass with work, median (ms)", *(
            f"{statistics.median(p.seconds for p in w) * 1000:.0f}" if w else "-"
            for w in full_pass), f"batches of {leg_checks.BATCH} per check"),
        ("  per leg recorded (ms)", *(f"{ph.full_seconds * 1000 / due:.3f}" for ph in phases),
         ""),
        ("  CPU: this process + its PostgreSQL backends (s)",
         *(f"{ph.full_cpu.client + ph.full_cpu.server:.2f}" for ph in phases),
         "what other processes cannot inflate"),
        (f"  deadlines_missed, per batch of {leg_checks.BATCH} (ms)", *(
            f"{batch_ms(ph, due):.0f}" for ph in phases), "its query, claims, updates, events"),
        (f"tick with nothing due, median of {len(large.idle)} (ms)",
         *(f"{ph.idle_ms():.1f}" for ph in phases), f"< {IDLE_TICK_TARGET_MS:g} ms"),
        ("  first one, right after the full tick (ms)",
         *(f"{ph.idle[0].seconds * 1000:.1f}" for ph in phases), ""),
        ("  warm-up tick, nothing due (ms)", *(f"{ph.warm_up.seconds * 1000:.1f}"
                                              for ph in phases), ""),
    ]
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print(" | ".join(cell.ljust(w) if i in (0, len(header) - 1) else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths, strict=True))))
    ratio = large.full_seconds / small.full_seconds
    print()
    print("Checks:")
    targets = [
        (f"full tick at {large.legs:,} legs = {large.full_seconds:.2f} s "
         f"(target < {FULL_TICK_TARGET_S:g} s)", large.full_seconds < FULL_TICK_TARGET_S),
        (f"tick with nothing due at {large.legs:,} legs = {large.idle_ms():.1f} ms "
         f"(target < {IDLE_TICK_TARGET_MS:g} ms)", large.idle_ms() < IDLE_TICK_TARGET_MS),
        (f"full tick {large.legs:,} / {small.legs:,} legs = {ratio:.2f} "
         f"(target < {RATIO_TARGET:g})", ratio < RATIO_TARGET),
    ]
    for what, ok in targets:
        print(f"  {what}: {'PASS' if ok else 'MISS'}")
    cpu_ratio = ((large.full_cpu.client + large.full_cpu.server)
                 / max(small.full_cpu.client + small.full_cpu.server, 1e-9))
    print(f"  (the same ratio in CPU time, this process and its backends: {cpu_ratio:.2f}; "
          f"the machine's load average now {os.getloadavg()[0]:.1f})")
    correct = True
    for ph in phases:
        for what, ok in verify(ph, due):
            correct &= ok
            print(f"  {ph.label}: {what}: {'OK' if ok else 'WRONG'}")
    print()
    print("Where the time goes:")
    for ph in phases:
        print_breakdown(f"{ph.label}, full tick (passes and digest)", breakdown(ph.full.passes),
                        due)
        print(f"    {ph.full_cpu.line()}")
        if ph.full.digests:
            print_breakdown(f"{ph.label}, its digest step", breakdown(ph.full.digests), due)
        median = breakdown(sorted(ph.idle, key=lambda t: t.seconds)[len(ph.idle) // 2].passes)
        print_breakdown(f"{ph.label}, tick with nothing due (median pass)", median, 0)
        print(f"    due queries of that pass (ms): {median['due_by_kind']}")
        print(f"    all {len(ph.idle)} ticks with nothing due: {ph.idle_cpu.line()}")
    for ph in phases:
        for title, plan in ph.plans.items():
            print()
            print(f"EXPLAIN (ANALYZE, BUFFERS), {ph.label}, due query {title}:")
            for line in plan:
                print(f"  {line}")
        if ph.idle_plans:
            print()
            print(f"Every SELECT of a tick with nothing due, {ph.label} ({ph.legs:,} legs), "
                  f"EXPLAIN ANALYZE (ms, scans and the rows they read):")
            for check, milliseconds, scans, _ in ph.idle_plans:
                print(f"  {check:<32} {milliseconds:>9.1f}  {scans}")
            slowest = max(ph.idle_plans, key=lambda p: p[1])
            print()
            print(f"EXPLAIN (ANALYZE, BUFFERS), {ph.label}, the slowest of them ({slowest[0]}):")
            for line in slowest[3]:
                print(f"  {line}")
    return correct


def machine_line(started: datetime, admin: str) -> str:
    memory = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.split()[7]
    engine = create_engine(admin)
    with engine.connect() as connection:
        settings = {name: connection.scalar(text(f"SHOW {name}")) for name in (
            "server_version", "fsync", "synchronous_commit", "shared_buffers")}
    engine.dispose()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{started:%Y-%m-%d %H:%M} UTC, nproc {os.cpu_count()}, memory {memory}, "
            f"load average {load} (1/5/15 min) at start; PostgreSQL "
            f"{settings['server_version'].split()[0]}, fsync {settings['fsync']}, "
            f"synchronous_commit {settings['synchronous_commit']}, shared_buffers "
            f"{settings['shared_buffers']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--legs", type=int, default=1_000_000, help="legs of the large database")
    parser.add_argument("--small-legs", type=int, default=10_000,
                        help="legs of the small database (at least --due)")
    parser.add_argument("--due", type=int, default=10_000, help="legs past a deadline in both")
    parser.add_argument("--stale-share", type=float, default=0.005,
                        help="share of the history stuck open past a deadline that fired "
                             "already (default 0.005)")
    parser.add_argument("--idle-ticks", type=int, default=3,
                        help="ticks with nothing due, after the full tick (at least 1)")
    parser.add_argument("--seed", default="1", help="of the random data")
    parser.add_argument("--contacts", type=int, default=0,
                        help="directory contacts with an email per organization (each missed "
                             "deadline queues a mail to each of the receiver's; default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.small_legs < args.due or args.legs < args.due:
        parser.error("--legs and --small-legs must be at least --due")
    if args.idle_ticks < 1:
        parser.error("--idle-ticks must be at least 1")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    started = datetime.now(UTC)
    admin = admin_url()
    machine = machine_line(started, admin)
    keyring = crypto.KeyRing.from_settings("", secrets.token_urlsafe(32))
    crypto.install(keyring)
    phases = run_phases(admin, args, keyring)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    correct = report(phases, args.due, f"{machine}; load average {load} at end; "
                                       f"whole run {elapsed:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "phases": [{
            "label": ph.label, "legs": ph.legs, "load_seconds": ph.seeded.seconds,
            "load_steps": ph.seeded.steps, "rows": ph.seeded.rows,
            "full_tick_seconds": ph.full_seconds,
            "passes_ms": [p.seconds * 1000 for p in ph.full.passes],
            "idle_ms": [t.seconds * 1000 for t in ph.idle],
            "full_tick": breakdown(ph.full.passes), "full_tick_cpu": vars(ph.full_cpu),
            "idle_cpu": vars(ph.idle_cpu), "plans": ph.plans,
            "idle_plans": ph.idle_plans} for ph in phases]},
            indent=2, default=str))
    if not correct:
        print("FAILED: the ticks did not record exactly what was due (WRONG lines above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
