"""Server time of the portal's busiest pages with many legs in the database.

Target (issue 6): the inbox and the coordinator's dashboard render in under 200 ms server time
with 100,000 legs.  Seeds a fresh database (SQLite by default, or a PostgreSQL admin URL with
--postgres) with organizations, participants and legs in bulk, then times GET /inbox (the
receiving organization with the most legs) and GET /network/stalled (first and third pages),
and the coordinator's charts of the last 90 days, through the WSGI app, in one process: the
time measured is the server's (routing, queries, template), not the network.

    .venv/bin/python bench/portal.py [--legs 100000] [--postgres URL] [--repeat 30]
"""

from __future__ import annotations

import argparse
import random
import re
import secrets
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.databases import fresh_hub_database  # noqa: E402
from hub import create_app
from hub.accounts import users  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.db import db, utcnow  # noqa: E402
from hub.directory.organizations import create_organization  # noqa: E402
from hub.ops import upgrade_database  # noqa: E402
from hub.referrals.legs import Referral  # noqa: E402
from hub.referrals.participants import Participant  # noqa: E402
from tests.portal import PASSWORD, Person  # noqa: E402

RECEIVERS = 20
PARTICIPANTS = 2_000
# Status mix: most legs are closed history; a few per cent are open, some of them overdue.
STATUSES = [("completed", 0.55), ("declined", 0.1), ("cancelled", 0.08), ("forwarded", 0.05),
            ("expired", 0.04), ("sent", 0.06), ("acknowledged", 0.04), ("accepted", 0.04),
            ("in_progress", 0.04)]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed(app, legs: int) -> tuple[str, str]:  # noqa: ANN001
    """The network and its legs; returns the emails of a receiver's staff and a coordinator."""
    rng = random.Random(6)
    now = utcnow()
    with app.app_context(), db.job_session() as session:
        sender = create_organization(session, name="Carrefour", kind="community", region="06")
        receivers = [create_organization(session, name=f"Partenaire {i:02d}",
                                         kind="regional_partner", region=f"{1 + i % 17:02d}")
                     for i in range(RECEIVERS)]
        coordination = create_organization(session, name="Table", kind="coordination",
                                           region="06")
        partner_email = f"partner-{secrets.token_hex(3)}@example.org"
        coordinator_email = f"coordinator-{secrets.token_hex(3)}@example.org"
        users.create_user(session, organization=receivers[0], email=partner_email,
                          role="partner_staff", password=PASSWORD)
        users.create_user(session, organization=coordination, email=coordinator_email,
                          role="coordinator", password=PASSWORD)
        people = []
        for i in range(PARTICIPANTS):
            person = Participant(id=uuid.uuid4(), organization_id=sender.id,
                                 given_name=f"Prénom{i}", family_name=f"Nom{i}",
                                 preferred_language="fr", created_at=now)
            person.set_blind_indexes()
            people.append(person)
        session.add_all(people)
        session.flush()
        receiver_ids = [r.id for r in receivers]
        sender_id = sender.id
        participant_ids = [p.id for p in people]

    statuses = [s for s, _ in STATUSES]
    weights = [w for _, w in STATUSES]
    # The first receiver gets a quarter of all legs: its inbox is the heaviest.
    receiver_weights = [RECEIVERS] + [1] * (RECEIVERS - 1)
    started = time.perf_counter()
    batch = []
    with app.app_context():
        engine = db.engine
        for n in range(legs):
            status = rng.choices(statuses, weights)[0]
            created = now - timedelta(minutes=rng.randint(10, 60 * 24 * 400))
            leg_id = uuid.uuid4()
            # Deadlines around now: some open legs are overdue, others not yet.
            due = now + timedelta(hours=rng.randint(-24 * 20, 24 * 5))
            batch.append({
                "id": leg_id, "chain_id": leg_id, "participant_id": rng.choice(participant_ids),
                "from_organization_id": sender_id,
                "to_organization_id": rng.choices(receiver_ids, receiver_weights)[0],
                "pathway": rng.choice(["employment", "settlement", "training"]),
                "stage": None, "priority": rng.choice(["routine", "routine", "urgent"]),
                "reason_for_referral": None, "needs": [], "status": status, "version": 1,
                "created_at": created, "updated_at": created,
                "closed_at": created + timedelta(days=3) if status in statuses[:5] else None,
                "acknowledge_by": due, "expire_by": due + timedelta(days=3),
                "decide_by": due if status != "sent" else None,
                "start_by": due if status in ("accepted", "in_progress") else None,
            })
            if len(batch) == 5_000 or n == legs - 1:
                with engine.begin() as connection:
                    connection.execute(insert(Referral), batch)
                batch = []
                log(f"  {n + 1} legs ({time.perf_counter() - started:.0f} s)")
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return partner_email, coordinator_email


def timed(person: Person, path: str, repeat: int) -> dict[str, float]:
    assert person.get(path).status_code == 200  # warm: templates compiled, caches filled
    samples, cpu = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = person.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        # CPU time of this process (the app and, on SQLite, the database engine): less
        # sensitive than wall time to other work on a shared machine.
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert response.status_code == 200
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
            "max_ms": round(samples[-1], 1),
            "median_cpu_ms": round(statistics.median(cpu), 1)}


def page_link(person: Person, path: str, number: int) -> str:
    """The link to page `number` of a list, followed from its first page (keyset paging)."""
    for _ in range(number - 1):
        found = re.search(r'<a href="([^"]+)" rel="next"', person.get(path).get_data(as_text=True))
        assert found, f"{path} has fewer than {number} pages"
        path = found.group(1).replace("&amp;", "&")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--postgres", help="PostgreSQL admin URL: a fresh database is made")
    args = parser.parse_args()

    with fresh_hub_database(args.postgres, "hub_portal_bench") as url:
        return measure(url, args)


def measure(url: str, args: argparse.Namespace) -> int:
    upgrade_database(url)
    app = create_app(Settings(env="test", database_url=url, log_level="WARNING",
                              secret_key="portal-bench-" + "z" * 32))
    log(f"seeding {args.legs} legs into {url.split('@')[-1]}")
    partner_email, coordinator_email = seed(app, args.legs)
    partner = Person.logged_in(app, partner_email)
    coordinator = Person.logged_in(app, coordinator_email)
    with app.app_context():
        inbound = db.session.scalar(text(
            "SELECT count(*) FROM referrals r JOIN users u ON u.organization_id = "
            "r.to_organization_id WHERE u.email = :e"), {"e": partner_email})
        stalled = db.session.scalar(text(
            "SELECT count(*) FROM referrals WHERE (status = 'sent' AND acknowledge_by < :now) "
            "OR (status = 'acknowledged' AND decide_by < :now) "
            "OR (status = 'accepted' AND start_by < :now)"), {"now": utcnow()})
    results = {
        "backend": app.config["HUB_SETTINGS"].database_url.split(":")[0],
        "legs": args.legs, "legs_to_the_inbox_organization": inbound,
        "stalled_legs_in_the_network": stalled,
        "inbox": timed(partner, "/inbox", args.repeat),
        "inbox_third_page": timed(partner, page_link(partner, "/inbox", 3), args.repeat),
        "stalled_dashboard": timed(coordinator, "/network/stalled", args.repeat),
        "stalled_third_page": timed(coordinator, page_link(coordinator, "/network/stalled", 3),
                                    args.repeat),
        "network_charts_90_days": timed(coordinator, "/network/charts", args.repeat),
    }
    results["load_average"] = Path("/proc/loadavg").read_text().split()[:3]
    print(results)
    app.extensions["hub_db"][0].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
