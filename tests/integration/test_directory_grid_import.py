"""The counsellors' grids as the field keeps them (issue 20) import whole, on both backends: a
semicolon CSV saved by a French Excel (Windows-1252, a title line, columns in another order,
empty lines, "Bas-St-Laurent"), an XLSX with merged cells; the type of collaboration and notes
become the importing organization's relationship notes, with their history; a second import
changes nothing; no row makes a coordination body.

The shared test database keeps what other tests wrote, so each test gives the grid's names a
word of its own (the files themselves are read as they are).
"""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from hub.adapters.spreadsheet import read_grid
from hub.db import db
from hub.directory.grid_import import apply_import, plan_import
from hub.directory.organizations import Organization
from hub.directory.relationships import current_note, note_history
from tests.helpers import Network
from tests.hub_cli import run_hub

DATA = Path(__file__).parent.parent / "data" / "directory"
NAME_TITLES = ("Organisme",)


def rows_of(path: Path, word: str) -> list[tuple[int, dict[str, Any]]]:
    rows = list(read_grid(path))
    for _, row in rows:
        for title in NAME_TITLES:
            if row.get(title):
                row[title] = f"{row[title]} {word}"
    return rows


def run(app: Flask, rows: list[tuple[int, dict[str, Any]]], *, apply: bool,
        importer: str | None = None) -> dict[int, tuple[str, list[str]]]:
    importer_id = uuid.UUID(importer) if importer else None
    with app.app_context(), db.job_session() as session:
        outcomes = plan_import(session, rows, importer_id=importer_id)
        if apply:
            apply_import(session, outcomes, source="grille.csv", now=datetime.now(UTC),
                         importer_id=importer_id)
        return {o.line: (o.action, o.reasons) for o in outcomes}


def entries(app: Flask, word: str) -> dict[str, Organization]:
    with app.app_context(), db.job_session() as session:
        found = session.scalars(select(Organization).where(Organization.name.like(f"% {word}"))
                                .options(selectinload(Organization.services),
                                         selectinload(Organization.contacts))).all()
        for organization in found:
            session.expunge(organization)
        return {o.name.removesuffix(f" {word}"): o for o in found}


def test_the_regional_csv_imports_every_usable_row(app: Flask, network: Network) -> None:
    word = secrets.token_hex(3)
    importer = network.partner(name=f"Carrefour {word} importateur")
    rows = rows_of(DATA / "grille_regionale.csv", word)
    # The title line and the empty lines are not rows; line numbers are the file's.
    assert [line for line, _ in rows] == [4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]

    plan = run(app, rows, apply=False, importer=importer.organization_id)
    assert {line: action for line, (action, _) in plan.items()} == {
        4: "create", 5: "create", 6: "create", 8: "create", 9: "create", 10: "create",
        11: "create", 12: "create", 13: "create", 14: "create", 15: "merge", 16: "reject",
        17: "reject"}
    assert plan[4][1][0] == "kind regional_partner (the name says «place aux jeunes»)"
    assert plan[4][1][1] == ("relationship note: collaboration «Séjours exploratoires»; notes "
                             "«Préfère être joint le matin\nConnaît bien les logements à "
                             "Rimouski»")
    assert plan[6][1][-1] == "email «lucie.gagnon@example» is not an email address: left out"
    assert plan[11][1][0].startswith("kind other (kind to confirm: a coordination body is "
                                     "never created by an import")
    assert plan[15][1] == ["same organization and region as line 4: merged into it"]
    assert plan[16][1] == ["organization name is empty"]
    assert "«Atlantide» is not a Québec administrative region" in plan[17][1][0]
    assert entries(app, word) == {}  # a dry run writes nothing

    run(app, rows, apply=True, importer=importer.organization_id)
    stored = entries(app, word)
    assert {name: o.kind for name, o in stored.items()} == {
        "Place aux jeunes en région du Bas-St-Laurent": "regional_partner",
        "CISSS du Bas-Saint-Laurent": "public_institution",
        "MRC de La Matapédia": "public_institution",
        "Services Québec de Rimouski": "public_institution",
        "Cégep de Rimouski": "public_institution",
        "Ville de Sherbrooke": "public_institution",
        "Table de concertation des organismes de l'Estrie": "other",
        "Carrefour jeunesse-emploi Côte-des-Neiges": "community",
        "Coopérative de développement régional de l'Estrie": "cooperative_development",
        "Les Délices du large": "other",
    }
    place = stored["Place aux jeunes en région du Bas-St-Laurent"]
    assert place.region == "01"
    assert {c.name for c in place.contacts} == {"Jean-François Côté", "Julie Roy"}
    assert {s.name for s in place.services} == {"Séjours exploratoires", "accueil",
                                                "Accompagnement à l'installation"}
    assert [c.email for c in stored["MRC de La Matapédia"].contacts] == [None]

    with app.app_context(), db.job_session() as session:
        note = current_note(session, uuid.UUID(importer.organization_id), place.id)
        assert note is not None
        assert (note.collaboration, note.notes, note.updated_by) == (
            "Séjours exploratoires",
            "Préfère être joint le matin\nConnaît bien les logements à Rimouski",
            "import:grille.csv")
        cisss = current_note(session, uuid.UUID(importer.organization_id),
                             stored["CISSS du Bas-Saint-Laurent"].id)
        assert cisss is not None and cisss.collaboration == "Accompagnement à l'arrivée"

    again = run(app, rows, apply=True, importer=importer.organization_id)
    assert {action for line, (action, _) in again.items() if line < 15} == {"unchanged"}
    # Nothing would change; what was left out is still said.
    assert {line: reasons for line, (_, reasons) in again.items() if line < 15 and reasons} == {
        6: ["email «lucie.gagnon@example» is not an email address: left out"]}

    # A later grid with another collaboration: a new version, the first one kept.
    for _, row in rows:
        if row.get("Type de collaboration") == "Séjours exploratoires":
            row["Type de collaboration"] = "Séjours exploratoires et jumelage"
    changed = run(app, rows, apply=True, importer=importer.organization_id)
    assert changed[4][0] == "update"
    with app.app_context(), db.job_session() as session:
        history = note_history(session, uuid.UUID(importer.organization_id), place.id)
        assert [n.collaboration for n in history] == ["Séjours exploratoires et jumelage",
                                                      "Séjours exploratoires"]
        # The notes are the importer's: the partner itself has none about anyone.
        assert current_note(session, place.id, uuid.UUID(importer.organization_id)) is None


def test_the_merged_cells_xlsx_imports_whole(app: Flask) -> None:
    word = secrets.token_hex(3)
    rows = rows_of(DATA / "grille_fusionnee.xlsx", word)
    assert [(line, row["Région"]) for line, row in rows] == [
        (4, "Bas-St-Laurent"), (5, "Bas-St-Laurent"), (6, "Bas-St-Laurent"),
        (7, "Bas-St-Laurent"), (9, "Estrie"), (10, "Estrie")]
    plan = run(app, rows, apply=True)
    assert {line: action for line, (action, _) in plan.items()} == {
        4: "create", 5: "create", 6: "create", 7: "create", 9: "create", 10: "create"}
    assert plan[4][1] == ["kind community (type d'organisme «Organisme communautaire»)"]
    assert plan[7][1] == ["kind other (kind to confirm: «Astrologie» names no kind we know)"]
    stored = entries(app, word)
    assert {name: (o.kind, o.region) for name, o in stored.items()} == {
        "Carrefour d'accueil de Rimouski": ("community", "01"),
        "Clinique Santé-Vallée": ("other", "01"),
        "Table de concertation immigration BSL": ("other", "01"),
        "Boulangerie Astro": ("other", "01"),
        "CLSC de Magog": ("public_institution", "05"),
        "Ville de Magog": ("public_institution", "05"),
    }
    assert stored["Carrefour d'accueil de Rimouski"].last_validated_at == datetime(
        2025, 2, 3, tzinfo=UTC)
    assert {action for action, _ in run(app, rows, apply=True).values()} == {"unchanged"}


def test_the_command_names_the_importer(tmp_path: Path) -> None:
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    assert run_hub(env, "db", "upgrade").returncode == 0
    created = run_hub(env, "org", "create", "--name", "CJE de Rimouski", "--kind", "community",
                      "--region", "01")
    assert created.returncode == 0, created.stderr
    importer = created.stdout.split('"id": "')[1].split('"')[0]
    path = str(DATA / "grille_regionale.csv")

    unknown = run_hub(env, "directory", "import", path, "--as", str(uuid.uuid4()))
    assert unknown.returncode == 2 and "no organization has this id" in unknown.stderr

    dry = run_hub(env, "directory", "import", path, "--as", importer)
    assert dry.returncode == 0, dry.stderr
    assert ("line 5: would create «CISSS du Bas-Saint-Laurent» — kind public_institution (the "
            "name says «cisss»); relationship note: collaboration «Accompagnement à "
            "l'arrivée»; notes «Passer par l'accueil psychosocial»") in dry.stdout
    assert "Kind to confirm (entered as other): line 11, 14." in dry.stdout
    assert ("13 rows: 10 would be created, 0 would be updated, 0 unchanged, 1 merged into "
            "another row, 2 rejected.") in dry.stdout
    applied = run_hub(env, "directory", "import", path, "--as", importer, "--apply")
    assert "13 rows: 10 created" in applied.stdout
    again = run_hub(env, "directory", "import", path, "--as", importer, "--apply")
    assert ("13 rows: 0 created, 0 updated, 10 unchanged, 1 merged into another row, "
            "2 rejected.") in again.stdout


def test_only_a_type_d_organisme_cell_changes_a_kind_already_chosen(app: Flask) -> None:
    word = secrets.token_hex(3)
    name = f"Maison des Îles {word}"
    first = run(app, [(2, {"Organisme": name, "Région": "11"})], apply=True)
    assert first[2] == ("create", ["kind other (kind to confirm: neither a type d'organisme "
                                   "nor the name or services say it)"])
    # Services that say more are a guess, not a correction: the kind stays to confirm.
    guessed = run(app, [(2, {"Organisme": name, "Région": "11",
                             "Services": "Aide à l'emploi"})], apply=True)
    assert guessed[2] == ("update", ["add services: Aide à l'emploi"])
    assert entries(app, word)["Maison des Îles"].kind == "other"
    # A "type d'organisme" cell is the counsellor's word for it: the kind is corrected.
    stated = run(app, [(2, {"Organisme": name, "Région": "11",
                            "Type d'organisme": "Organisme communautaire"})], apply=True)
    assert stated[2] == ("update", ["kind other → kind community (type d'organisme «Organisme "
                                    "communautaire»)"])
    assert entries(app, word)["Maison des Îles"].kind == "community"
