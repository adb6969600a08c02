"""The HSDS export API over a directory of a few thousand organizations, timed page by page.

    .venv/bin/python bench/directory_hsds.py [--organizations 3000] [--limit 500]
        [--database-url URL]

Fills a fresh, migrated database (a temporary SQLite file unless --database-url names another)
with a realistic directory through the grid import of `bench/directory_import.py` (each entry
with services, a location and a contact), serves the hub with waitress on a loopback port,
takes a token from the token endpoint and follows `GET /api/v1/directory/hsds` from the first
page to the last, as a partner's system would.  Prints the time of each page size (median,
slowest) and of the whole directory beside the targets, with the load average; exit status 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.directory_import import HUB, TITLES, make_rows  # noqa: E402
from hub import create_app  # noqa: E402
from hub.adapters.spreadsheet import write_grid  # noqa: E402
from hub.config import Settings  # noqa: E402

TARGET_PAGE_SECONDS = 1.0  # the slowest page of 500 organizations
TARGET_WHOLE_SECONDS = 10.0  # every page of a 3,000-organization directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--organizations", type=int, default=3000)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'hub.sqlite3'}"
        env = {**os.environ, "HUB_DATABASE_URL": url}
        subprocess.run([HUB, "db", "upgrade"], env=env, check=True, capture_output=True)
        grid = Path(scratch) / "grille.csv"
        write_grid(grid, TITLES, make_rows(args.organizations, random.Random(7)))
        subprocess.run([HUB, "directory", "import", str(grid), "--apply"], env=env, check=True,
                       capture_output=True)
        created = subprocess.run([HUB, "org", "list"], env=env, check=True,
                                 capture_output=True, text=True).stdout.count('"id"')
        app = create_app(Settings(env="test", database_url=url, log_level="WARNING"))
        from hub.accounts import clients
        from hub.db import db
        from hub.directory.organizations import Organization

        with app.app_context(), db.job_session() as session:
            organization = session.query(Organization).first()
            client, secret = clients.create_client(session, organization=organization,
                                                    scopes=["directory:read"])
            client_id = client.client_id
        from waitress.server import create_server

        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        threading.Thread(target=server.run, daemon=True).start()
        base = f"http://127.0.0.1:{server.effective_port}"
        try:
            token = requests.post(f"{base}/oauth/token", auth=(client_id, secret), timeout=30,
                                  data={"grant_type": "client_credentials"}).json()
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {token['access_token']}"
            pages: list[float] = []
            cpu: list[float] = []  # server and client share this process
            seen = 0
            query: dict[str, object] = {"limit": args.limit}
            began = time.perf_counter()
            while True:
                started, cpu_started = time.perf_counter(), time.process_time()
                answer = http.get(f"{base}/api/v1/directory/hsds", params=query, timeout=60)
                answer.raise_for_status()
                body = answer.json()
                pages.append(time.perf_counter() - started)
                cpu.append(time.process_time() - cpu_started)
                seen += len(body["items"])
                if body["next_cursor"] is None:
                    break
                query = {"limit": args.limit, "cursor": body["next_cursor"]}
            whole = time.perf_counter() - began
        finally:
            server.close()
    load = os.getloadavg()
    print(f"{seen} organizations exported ({created} in the directory), {len(pages)} pages "
          f"of up to {args.limit}, {url.split(':')[0]}")
    print(f"page: median {statistics.median(pages):.3f} s, slowest {max(pages):.3f} s "
          f"(target for 500: < {TARGET_PAGE_SECONDS:.1f} s); CPU per page: median "
          f"{statistics.median(cpu):.3f} s, most {max(cpu):.3f} s")
    print(f"whole directory: {whole:.2f} s (target for 3,000: < {TARGET_WHOLE_SECONDS:.0f} s)")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    missed = seen != created or max(pages) > TARGET_PAGE_SECONDS or whole > TARGET_WHOLE_SECONDS
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
