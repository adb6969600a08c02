"""What consent enforcement costs each lifecycle step, in-process: SQL statements and time.

    .venv/bin/python -m bench.consent_cost --backend postgresql --lifecycles 150
    .venv/bin/python -m bench.consent_cost --backend sqlite --show

No HTTP server, no queueing, one thread: the app of `bench/baseline_app.py` called through
Flask's test client, lifecycles with consent enforcement and without it (the header
`X-Bench-Consent: off`) alternating, so that a disturbance of the machine weighs on both.
For each step it prints the statements run (counted with an SQLAlchemy engine listener; the
commit is not a statement) and the median and mean time; then the lifecycle's mean time in
each mode and their ratio, the in-process counterpart of `bench/lifecycle.py`'s
`lifecycle req/s / lifecycle_unchecked req/s`.  `--show` prints the statements of one
lifecycle of each mode.  The PostgreSQL database is made on the server of
`scripts/test-postgres.sh` (the tests' one, fsync off) and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from bench.databases import fresh_postgresql_database

STEPS = ("send", "acknowledge", "accept", "start", "complete")


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/hub.sqlite3"
        return
    with fresh_postgresql_database("hub_consent_cost") as url:  # on the tests' server
        yield url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--lifecycles", type=int, default=150, help="of each mode")
    parser.add_argument("--show", action="store_true", help="print one lifecycle's SQL")
    args = parser.parse_args()
    with database(args.backend) as url:
        os.environ.update(HUB_ENV="test", HUB_DATABASE_URL=url, HUB_LOG_LEVEL="WARNING",
                          HUB_SECRET_KEY=secrets.token_urlsafe(36))
        from hub.ops import upgrade_database

        upgrade_database(url)
        from bench.baseline_app import CONSENT_SWITCH, app  # the switch of the HTTP benchmark

        run(app, CONSENT_SWITCH, args)
    return 0


def run(app: Any, switch: str, args: argparse.Namespace) -> None:
    from hub.accounts import clients
    from hub.db import db
    from hub.directory.organizations import create_organization

    with app.app_context(), db.job_session() as session:
        def client(kind: str, region: str) -> tuple[str, str, str]:
            organization = create_organization(session, name=f"Cost {uuid.uuid4().hex[:6]}",
                                               kind=kind, region=region)
            made, secret = clients.create_client(session, organization=organization)
            return str(organization.id), made.client_id, secret

        sender, receiver = client("community", "06"), client("regional_partner", "01")
    web = app.test_client()

    def bearer(account: tuple[str, str, str]) -> dict[str, str]:
        answer = web.post("/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(account[1], account[2]))
        return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}

    as_sender, as_receiver = bearer(sender), bearer(receiver)
    participant = web.post("/api/v1/participants", headers=as_sender, json={
        "given_name": "Amina", "family_name": "Benali", "preferred_language": "fr",
        "email": "amina@example.org", "birth_year": 1990}).get_json()["id"]
    granted = web.post(f"/api/v1/participants/{participant}/consents", headers=as_sender,
                       json={"purpose": "referral_sharing", "organization_ids": [receiver[0]],
                             "evidence": "written"})
    assert granted.status_code == 201, granted.get_data(as_text=True)

    seen: list[str] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute",
                     lambda _c, _cur, statement, *_a: seen.append(" ".join(statement.split())))
    count: dict[str, list[int]] = defaultdict(list)
    took: dict[str, list[float]] = defaultdict(list)
    for number in range(2 * args.lifecycles):
        mode = "unchecked" if number % 2 else "checked"
        extra = {switch: "off"} if mode == "unchecked" else {}
        leg = ""
        for step in STEPS:
            seen.clear()
            started = time.perf_counter()
            if step == "send":
                answer = web.post("/api/v1/referrals", headers={**as_sender, **extra}, json={
                    "participant_id": participant, "to_organization_id": receiver[0],
                    "pathway": "employment", "reason_for_referral": "Soudure"})
                leg = answer.get_json()["id"]
            else:
                answer = web.post(f"/api/v1/referrals/{leg}/{step}",
                                  headers={**as_receiver, **extra},
                                  json={"outcome": "employed"} if step == "complete" else {})
            took[f"{step} {mode}"].append(time.perf_counter() - started)
            assert answer.status_code in (200, 201), answer.get_data(as_text=True)
            count[f"{step} {mode}"].append(len(seen))
            if args.show and number in (2, 3):
                print(f"--- {step} ({mode}): {len(seen)} statements")
                for statement in seen:
                    print(f"    {statement[:160]}")
    warm = min(5, args.lifecycles - 1)
    print(f"{args.backend}, {args.lifecycles} lifecycles of each mode, alternating; "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'step':12} | {'statements checked / unchecked':30} | ms median checked / unchecked")
    totals = {"checked": 0.0, "unchecked": 0.0}
    for step in STEPS:
        medians = []
        for mode in totals:
            times = took[f"{step} {mode}"][warm:]
            totals[mode] += statistics.fmean(times) * 1000
            medians.append(statistics.median(times) * 1000)
        checked, unchecked = count[f"{step} checked"][-1], count[f"{step} unchecked"][-1]
        print(f"{step:12} | {checked:>14} / {unchecked:<13} | {medians[0]:8.2f} / "
              f"{medians[1]:.2f}")
    print(f"lifecycle mean ms: checked {totals['checked']:.2f}, unchecked "
          f"{totals['unchecked']:.2f}; unchecked / checked = "
          f"{totals['unchecked'] / totals['checked']:.3f} (target >= 0.90)")


if __name__ == "__main__":
    sys.exit(main())
