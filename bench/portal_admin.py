"""Server time of the organization admin's long lists: an endpoint's delivery log and the
organization's users, first and deep pages (keyset paging, both ways), and the count the
"send failed deliveries again" confirmation shows.

Target: as the portal's busiest pages (bench/portal.py), under 200 ms server time, wherever
the page is in the list.  Seeds a fresh database (SQLite by default, or a PostgreSQL admin URL
with --postgres, where a fresh database is made) with two organizations' endpoints, their
deliveries interleaved (a tenth dead), and the admin's organization's users; then times the
pages through the WSGI app, in one process.

    .venv/bin/python bench/portal_admin.py [--deliveries 200000] [--users 1200] [--repeat 20]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.databases import fresh_hub_database  # noqa: E402
from bench.portal import log, page_link, timed  # noqa: E402
from hub import create_app
from hub.accounts import users
from hub.accounts.users import User  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.db import db, utcnow  # noqa: E402
from hub.directory.organizations import create_organization  # noqa: E402
from hub.ops import upgrade_database  # noqa: E402
from hub.outbox import subscriptions  # noqa: E402
from tests.portal import PASSWORD, Person  # noqa: E402
from webhooks.models import Delivery  # noqa: E402


def seed(app, deliveries: int, people: int) -> tuple[str, uuid.UUID, uuid.UUID]:  # noqa: ANN001
    """The admin's email, organization and endpoint; the other endpoint gets as many."""
    now = utcnow()
    with app.app_context(), db.job_session() as session:
        own = create_organization(session, name="Place aux jeunes", kind="regional_partner",
                                  region="01")
        other = create_organization(session, name="Carrefour", kind="community", region="06")
        admin = users.create_user(session, organization=own, email="admin@example.org",
                                  role="org_admin", password=PASSWORD, name="Admin")
        endpoint_ids = []
        for organization in (own, other):
            endpoint, _secret = subscriptions.register_endpoint(
                session, organization_id=organization.id, url="http://127.0.0.1:9/x",
                event_types=["*"], description=None, registered_by="bench", may_answer=False,
                allow_loopback_http=True, now=now)
            endpoint_ids.append(endpoint.id)
        own_id, hashed = own.id, admin.password_hash
    engine = app.extensions["hub_db"][0]
    started = time.perf_counter()
    batch = []
    for n in range(2 * deliveries):
        made = now - timedelta(seconds=2 * deliveries - n)
        dead = (n // 2) % 10 == 0  # a tenth of each endpoint's
        batch.append({"endpoint_id": endpoint_ids[n % 2], "message_id": f"msg_{n}",
                      "event_type": "referral.sent", "ordering_key": f"referrals/{n}",
                      "sequence": 1, "state": "dead" if dead else "delivered", "attempts": 1,
                      "next_attempt_at": made, "created_at": made,
                      "delivered_at": None if dead else made, "dead_at": made if dead else None,
                      "last_status_code": 400 if dead else 204})
        if len(batch) == 10_000:
            with engine.begin() as connection:
                connection.execute(insert(Delivery), batch)
            batch = []
            log(f"  {n + 1} deliveries ({time.perf_counter() - started:.0f} s)")
    with engine.begin() as connection:
        if batch:
            connection.execute(insert(Delivery), batch)
        connection.execute(insert(User), [
            {"id": uuid.uuid4(), "organization_id": own_id, "email": f"p{i}@example.org",
             "name": f"Personne {i:05d}", "role": "partner_staff", "password_hash": hashed,
             "language": "fr", "created_at": now} for i in range(people)])
        connection.execute(text("ANALYZE"))
    return "admin@example.org", own_id, endpoint_ids[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=200_000,
                        help="deliveries of each of the two endpoints")
    parser.add_argument("--users", type=int, default=1_200)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres", help="PostgreSQL admin URL: a fresh database is made")
    args = parser.parse_args()
    with fresh_hub_database(args.postgres, "hub_admin_bench") as url:
        upgrade_database(url)
        app = create_app(Settings(env="test", database_url=url, log_level="WARNING",
                                  secret_key="admin-bench-" + "z" * 32))
        log(f"seeding 2 x {args.deliveries} deliveries and {args.users} users")
        email, organization_id, endpoint_id = seed(app, args.deliveries, args.users)
        admin = Person.logged_in(app, email)
        log_page = f"/admin/{organization_id}/webhooks/{endpoint_id}"
        deep = page_link(admin, log_page, 50)
        since = (utcnow() - timedelta(days=365)).strftime("%Y-%m-%dT%H:%M")
        results = {
            "backend": url.split(":")[0], "deliveries_per_endpoint": args.deliveries,
            "users": args.users,
            "delivery_log_first_page": timed(admin, log_page, args.repeat),
            "delivery_log_50th_page": timed(admin, deep, args.repeat),
            "recover_confirmation_count": timed(
                admin, f"{log_page}/recover?since={since}", args.repeat),
            "users_first_page": timed(admin, f"/admin/{organization_id}/users", args.repeat),
            "users_third_page": timed(
                admin, page_link(admin, f"/admin/{organization_id}/users", 3), args.repeat),
            "load_average": Path("/proc/loadavg").read_text().split()[:3],
        }
        print(results)
        app.extensions["hub_db"][0].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
