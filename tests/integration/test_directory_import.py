"""`hub directory import` (issue 7): the counsellors' partner grid into the directory, with a
dry run by default, a report row by row with line numbers, idempotent re-runs and
near-duplicate suggestions; bad rows never stop the good ones.

Names carry a word of this test's own, as the test database is shared.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from hub.adapters.spreadsheet import read_grid, write_grid
from hub.db import db
from hub.directory.grid_import import apply_import, plan_import
from hub.directory.organizations import Organization
from tests.hub_cli import run_hub

DATA = Path(__file__).parent.parent / "data" / "directory"
TITLES = ["Organisme", "Région", "Personne-ressource", "Services", "Type de collaboration",
          "Dernière validation"]


def grid(tmp_path: Path, rows: list[list[object]], name: str = "grille.xlsx") -> Path:
    path = tmp_path / name
    write_grid(path, TITLES, rows)
    return path


def run_import(app: Flask, path: Path, *, apply: bool) -> list:
    with app.app_context(), db.job_session() as session:
        outcomes = plan_import(session, read_grid(path))
        if apply:
            apply_import(session, outcomes, source=path.name, now=datetime.now(UTC))
        return [(o.line, o.action, o.name, o.reasons, o.near_duplicates) for o in outcomes]


def stored(app: Flask, name: str) -> Organization | None:
    with app.app_context(), db.job_session() as session:
        organization = session.scalars(select(Organization).where(Organization.name == name)
                                       .options(selectinload(Organization.services),
                                                selectinload(Organization.contacts),
                                                selectinload(Organization.locations))).first()
        if organization is not None:
            session.expunge(organization)
        return organization


def test_a_dry_run_reports_each_row_and_writes_nothing(app: Flask, tmp_path: Path) -> None:
    word = secrets.token_hex(3)
    path = grid(tmp_path, [
        [f"Accueil {word} en région", "Estrie", "Luc Roy luc@example.org", "Installation",
         "Partenaire régional", None],
        [None, "06", None, None, None, None],
    ])
    report = run_import(app, path, apply=False)
    assert [(line, action) for line, action, *_ in report] == [(2, "create"), (3, "reject")]
    assert "organization name is empty" in report[1][3][0]
    assert stored(app, f"Accueil {word} en région") is None


def test_apply_creates_entries_and_a_second_run_changes_nothing(app: Flask, tmp_path: Path
                                                                 ) -> None:
    word = secrets.token_hex(3)
    rows: list[list[object]] = [
        [f"Carrefour d'intégration {word}", "Capitale-Nationale",
         "Marie-Ève Tremblay (conseillère en emploi) me.tremblay@example.org 418 555-0101",
         "Aide à l'emploi; francisation", "Organisme communautaire",
         datetime(2025, 3, 14)],                          # an Excel date cell
        [f"Coopérative {word} de l'Estrie", "05", None,
         "Démarrage de coopératives\nAccompagnement", "Coopérative", 45000],  # a serial date
        [f"Fromagerie {word}", "11", "Luc Arseneau", "Emplois", "Astrologie", None],
    ]
    path = grid(tmp_path, rows)
    report = run_import(app, path, apply=True)
    # "Type de collaboration" is not the kind: the kind comes from the name, or is to confirm.
    assert [(line, action) for line, action, *_ in report] == [
        (2, "create"), (3, "create"), (4, "create")]
    assert report[0][3] == ["kind community (the name says «carrefour d integration»)"]
    assert report[2][3] == ["kind other (kind to confirm: neither a type d'organisme nor the "
                            "name or services say it)"]

    carrefour = stored(app, f"Carrefour d'intégration {word}")
    assert carrefour is not None and carrefour.region == "03" and carrefour.kind == "community"
    assert [(s.name, s.pathways) for s in carrefour.services] == [
        ("Aide à l'emploi", ["employment"]), ("francisation", ["training"])]
    (contact,) = carrefour.contacts
    assert (contact.name, contact.role, contact.email, contact.phone) == (
        "Marie-Ève Tremblay", "conseillère en emploi", "me.tremblay@example.org", "418 555-0101")
    assert carrefour.last_validated_at == datetime(2025, 3, 14, tzinfo=UTC)
    assert carrefour.last_validated_by == "import:grille.xlsx"
    coop = stored(app, f"Coopérative {word} de l'Estrie")
    assert coop is not None and coop.kind == "cooperative_development"
    assert coop.last_validated_at == datetime(2023, 3, 15, tzinfo=UTC)  # Excel day 45000
    assert {s.name: s.pathways for s in coop.services} == {
        "Démarrage de coopératives": ["cooperative_entrepreneurship", "entrepreneurship"],
        "Accompagnement": []}

    again = run_import(app, path, apply=True)
    assert [action for _, action, *_ in again] == ["unchanged", "unchanged", "unchanged"]
    assert [reasons for _, _, _, reasons, _ in again] == [[], [], []]
    fromagerie = stored(app, f"Fromagerie {word}")
    assert fromagerie is not None and fromagerie.kind == "other"

    # A later grid adding a contact and a service updates the entry, keeping what it had.
    rows[0][2] = "Jean Roy, agent d'accueil"
    rows[0][3] = "Aide à l'emploi; Logement"
    updated = run_import(app, grid(tmp_path, rows[:1], "suite.csv"), apply=True)
    assert updated[0][1] == "update"
    assert updated[0][3] == ["add services: Logement", "add contact Jean Roy"]
    carrefour = stored(app, f"Carrefour d'intégration {word}")
    assert carrefour is not None
    assert {c.name for c in carrefour.contacts} == {"Marie-Ève Tremblay", "Jean Roy"}
    assert len(carrefour.services) == 3


def test_near_duplicates_and_repeated_rows_are_pointed_out(app: Flask, tmp_path: Path) -> None:
    word = secrets.token_hex(3)
    run_import(app, grid(tmp_path, [[f"Carrefour jeunesse-emploi {word} Rimouski", "01", None,
                                     None, "communautaire", None]]), apply=True)
    report = run_import(app, grid(tmp_path, [
        [f"Carrefour jeunesse emploi {word} de Rimouski", "Bas-Saint-Laurent", None, None,
         None, None],
        [f"CARREFOUR JEUNESSE-EMPLOI {word} RIMOUSKI", "01", None, None, None, None],
        [f"Maison {word}", "01", None, None, None, None],
        [f"Maison {word}", "Bas-St-Laurent", None, None, None, None],
    ], "second.xlsx"), apply=False)
    (near, same, first, repeated) = report[:4]
    assert near[1] == "create" and f"Carrefour jeunesse-emploi {word} Rimouski" in near[4][0]
    assert same[1] == "unchanged"  # case and dashes do not make another organization
    assert first[1] == "create"
    assert repeated[1] == "merge" and repeated[3] == [
        "same organization and region as line 4: merged into it"]

    # A grid never turns a member into a coordination body (which sees the whole network),
    # whether "concertation" is its type of collaboration or its type of organization.
    promoted = run_import(app, grid(tmp_path, [[f"Carrefour jeunesse-emploi {word} Rimouski",
                                                "01", None, None, "Table de concertation",
                                                None]], "third.xlsx"), apply=True)
    assert promoted[0][1] == "unchanged"
    titles = ["Organisme", "Région", "Type d'organisme"]
    path = tmp_path / "fourth.csv"
    write_grid(path, titles, [[f"Carrefour jeunesse-emploi {word} Rimouski", "01",
                               "Table de concertation"]])
    assert run_import(app, path, apply=True)[0][1] == "unchanged"
    kept = stored(app, f"Carrefour jeunesse-emploi {word} Rimouski")
    assert kept is not None and kept.kind == "community"


def test_the_sample_csv_from_excel_reports_line_numbers(app: Flask) -> None:
    """A semicolon CSV as Excel writes it, with a multi-line cell: line numbers are the
    file's, so a counsellor finds the row."""
    report = run_import(app, DATA / "grille_partenaires.csv", apply=False)
    by_line = {line: (action, reasons) for line, action, _, reasons, _ in report}
    assert by_line[2][0] in ("create", "update", "unchanged")
    assert by_line[3][0] in ("create", "update", "unchanged")  # "Bas-St-Laurent"
    assert by_line[4][0] in ("create", "update", "unchanged")  # spans lines 4 and 5
    assert by_line[7] == ("reject", ["organization name is empty"])
    assert by_line[8][0] == "reject" and "Tombouctou" in by_line[8][1][0]
    # "Astrologie" is a type of collaboration, not a kind: the row is kept, its kind to confirm.
    assert by_line[9][0] in ("create", "update", "unchanged")
    # The curly apostrophe names the same organization as line 2: the rows merge.
    assert by_line[10] == ("merge", ["same organization and region as line 2: merged into it"])


def test_the_command_reports_and_applies(tmp_path: Path) -> None:
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    assert run_hub(env, "db", "upgrade").returncode == 0
    path = DATA / "grille_partenaires.csv"

    def hub_import(*flags: str) -> subprocess.CompletedProcess[str]:
        return run_hub(env, "directory", "import", str(path), *flags)

    dry = hub_import()
    assert dry.returncode == 0, dry.stderr
    assert "line 2: would create «Carrefour d'intégration de la Capitale»" in dry.stdout
    assert "line 8: REJECT «Atelier Le Tremplin» — region «Tombouctou»" in dry.stdout
    assert dry.stdout.strip().endswith("Dry run: nothing written; add --apply to write.")
    assert ("8 rows: 5 would be created, 0 would be updated, 0 unchanged, 1 merged into "
            "another row, 2 rejected.") in dry.stdout
    assert "Kind to confirm (entered as other): line 9." in dry.stdout
    assert "name the importing organization with --as ORG_ID" in dry.stdout
    assert "Reading rows" in dry.stderr  # the progress bar

    applied = hub_import("--apply")
    assert ("8 rows: 5 created, 0 updated, 0 unchanged, 1 merged into another row, "
            "2 rejected.") in applied.stdout
    again = hub_import("--apply")
    assert ("8 rows: 0 created, 0 updated, 5 unchanged, 1 merged into another row, "
            "2 rejected.") in again.stdout

    missing = run_hub(env, "directory", "import", str(tmp_path / "grille.pdf"))
    assert missing.returncode != 0
