"""Import of a 5,000-row partner grid, timed against the target of issue 7 (under 10 s).

    .venv/bin/python bench/directory_import.py [--rows 5000] [--format xlsx|csv]
        [--database-url URL] [--as-importer]

Makes a realistic grid (French names with accents and apostrophes, regions by name or code,
contacts with roles, emails and phones, several services, Excel dates, 1 row in 50 bad and 1 in
100 a near-duplicate), then runs `hub directory import FILE --apply` on a fresh, migrated
database (a temporary SQLite file unless --database-url names another) and times it end to
end, as a user would; then runs it again to show the re-run changes nothing.  Prints the
wall and CPU times beside the target, with the load average (on a shared machine the wall time
includes waiting for a core); exit status 1 when the wall time misses the target.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.adapters.spreadsheet import write_grid  # noqa: E402
from hub.directory.organizations import QUEBEC_REGIONS  # noqa: E402

TARGET_SECONDS = 10.0
HUB = str(Path(sys.executable).parent / "hub")
TITLES = ["Organisme", "Région", "Personne-ressource", "Services", "Type d'organisme",
          "Dernière validation", "Type de collaboration", "Notes"]
# "Table de concertation" and "Astrologie" are kept as `other`, kinds to confirm.
KINDS = ["Organisme communautaire", "Partenaire régional", "Entrepreneuriat", "Coopérative",
         "Entreprise d'insertion", "Employeur", "Table de concertation", "Organisme public",
         None, "Astrologie"]
COLLABORATIONS = ["Accompagnement à l'arrivée", "Séjours exploratoires", "Financement",
                  "Stages et placement", "Concertation", None]
WORDS = ["Carrefour", "Centre", "Maison", "Accueil", "Service", "Réseau", "Atelier", "Alliance",
         "Coopérative", "Société", "Regroupement", "Place"]
OF = ["d'intégration", "d'emploi", "de l'entrepreneuriat", "des nouveaux arrivants",
      "jeunesse-emploi", "d'aide à l'établissement", "de développement économique", "l'Élan"]
SERVICES = ["Aide à l'emploi", "Francisation", "Régionalisation", "Démarrage d'entreprise",
            "Accompagnement de coopératives", "Plateau de travail", "Logement", "Stages"]
PEOPLE = ["Marie-Ève Tremblay", "Jean-François Côté", "Sarah O'Brien", "Amadou Diallo",
          "Nguyễn Thị Lan", "Émilie Gagnon", "Karim Benali", "José García"]


def make_rows(count: int, rng: random.Random) -> list[list[object]]:
    rows: list[list[object]] = []
    regions = list(QUEBEC_REGIONS.items())
    for n in range(count):
        code, region = rng.choice(regions)
        name = f"{rng.choice(WORDS)} {rng.choice(OF)} {region} no {n}"
        if n % 100 == 99:  # a near-duplicate of the previous row, as typed by someone else
            name = rows[-1][0].upper().replace("'", "’") + " inc."  # type: ignore[union-attr]
            code = rows[-1][1]  # type: ignore[assignment]
        person = rng.choice(PEOPLE)
        handle = f"p{n}"
        contact = f"{person} (conseillère) {handle}@example.org 418 555-{n % 10_000:04d}"
        services = "; ".join(rng.sample(SERVICES, rng.randint(1, 3)))
        validated: object = datetime(2024, 1, 1) + timedelta(days=rng.randint(0, 600))
        if n % 3 == 0:
            validated = 45000 + rng.randint(0, 600)  # a serial number, as CSV exports keep
        region_cell = code if n % 2 else region
        kind: object = rng.choice(KINDS)
        if n % 50 == 25:  # bad rows: an unknown region or an empty name
            region_cell = "Tombouctou" if n % 100 == 25 else region_cell
            name = "" if n % 100 == 75 else name
        collaboration = rng.choice(COLLABORATIONS)
        notes = f"Joindre {person} le matin" if n % 4 == 0 else None
        rows.append([name, region_cell, contact, services, kind, validated, collaboration,
                     notes])
    return rows


SEARCHES = [{"q": "Montreal"}, {"q": "cooperative"}, {"q": "regionalisation laval"},
            {"q": "emploi", "region": "06"}, {"pathway": "entrepreneurship", "region": "01"},
            {"q": "tremblay", "capacity": "open"}]


def time_searches(url: str, repeat: int = 15) -> None:
    """Median time of a directory search (first page of 50, with entries) on the imported
    directory, in process."""
    import statistics

    from hub import create_app
    from hub.config import Settings
    from hub.db import db
    from hub.directory.search import search_organizations

    app = create_app(Settings(env="test", database_url=url, secret_key="bench-" + "x" * 40))
    with app.app_context(), db.job_session() as session:
        for filters in SEARCHES:
            found, timings = [], []
            for _ in range(repeat):
                began = time.perf_counter()
                found = search_organizations(session, limit=50, **filters)
                timings.append(time.perf_counter() - began)
            print(f"search {filters}: {len(found)} found (first page), median "
                  f"{statistics.median(timings) * 1000:.1f} ms")
    app.extensions["hub_db"][0].dispose()


def _children_cpu() -> float:
    """CPU seconds used by finished child processes: on a loaded machine the wall time also
    counts the time spent waiting for a core."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--as-importer", action="store_true",
                        help="Import --as an organization: its relationship notes are written "
                             "too (issue 20).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="maillage-import-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'hub.sqlite3'}"
        env = {**os.environ, "HUB_DATABASE_URL": url}
        subprocess.run([HUB, "db", "upgrade"], env=env, check=True, capture_output=True)
        importer: list[str] = []
        if args.as_importer:
            made = subprocess.run([HUB, "org", "create", "--name", "Carrefour importateur",
                                   "--kind", "community", "--region", "06"], env=env,
                                  check=True, capture_output=True, text=True)
            importer = ["--as", json.loads(made.stdout)["id"]]
        grid = Path(tmp) / f"grille.{args.format}"
        write_grid(grid, TITLES, make_rows(args.rows, random.Random(7)))
        print(f"{args.rows} rows in {grid.name}, database {url.split(':')[0]}", file=sys.stderr,
              flush=True)

        timings, cpus = [], []
        for run in ("first", "again"):
            began, cpu_before = time.perf_counter(), _children_cpu()
            done = subprocess.run([HUB, "directory", "import", str(grid), "--apply", *importer],
                                  env=env,
                                  capture_output=True, text=True)
            timings.append(time.perf_counter() - began)
            cpu = _children_cpu() - cpu_before
            cpus.append(cpu)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            summary = done.stdout.strip().splitlines()[-1]
            print(f"{run:>6}: {timings[-1]:6.2f} s wall, {cpu:6.2f} s CPU  ({summary})")
        time_searches(url)
    # The wall time is the target's measure; the CPU time is what the import costs when the
    # machine's cores are shared (load average printed beside it).
    verdict = "PASS" if timings[0] < TARGET_SECONDS else "MISS"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"import of {args.rows} rows ({args.format}, `hub directory import --apply`, end to "
          f"end, process start included{', with --as' if args.as_importer else ''}): "
          f"{timings[0]:.2f} s wall, {cpus[0]:.2f} s CPU; "
          f"target < {TARGET_SECONDS:.0f} s: {verdict} (wall); CPU "
          f"{'under' if cpus[0] < TARGET_SECONDS else 'over'} the target; load average {load} "
          f"on {os.cpu_count()} CPUs")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
