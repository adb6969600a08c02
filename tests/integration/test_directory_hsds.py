"""`hub directory export-hsds` / `import-hsds` (issue 7): a directory goes to another hub as
HSDS 3.0 JSON and arrives the same; importing it again changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from hub.adapters.hsds import entry_from_hsds
from tests.hsds_schemas import hsds_errors
from tests.hub_cli import run_hub

GRID = Path(__file__).parent.parent / "data" / "directory" / "grille_partenaires.csv"


def _hub(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = run_hub({**os.environ, "HUB_DATABASE_URL": url}, *args)
    assert done.returncode == 0, done.stderr
    return done


def test_a_directory_moves_between_hubs_through_hsds(tmp_path: Path) -> None:
    first, second = (f"sqlite:///{tmp_path / name}" for name in ("a.sqlite3", "b.sqlite3"))
    for url in (first, second):
        _hub(url, "db", "upgrade")
    _hub(first, "directory", "import", str(GRID), "--apply")
    exported = tmp_path / "annuaire.json"
    _hub(first, "directory", "export-hsds", str(exported))
    document = json.loads(exported.read_text(encoding="utf-8"))
    assert len(document) == 5  # the grid's usable rows
    assert all(hsds_errors(organization) == [] for organization in document)
    assert any(o["name"] == "Entreprendre Gaspésie — Entrepreneurs in the Gaspé"
               for o in document)

    dry = _hub(second, "directory", "import-hsds", str(exported))
    assert "5 organizations: 5 create, 0 update, 0 unchanged, 0 reject." in dry.stdout
    assert json.loads(_hub(second, "directory", "export-hsds").stdout) == []  # dry run

    _hub(second, "directory", "import-hsds", str(exported), "--apply")
    again = json.loads(_hub(second, "directory", "export-hsds").stdout)
    assert [entry_from_hsds(o) for o in again] == [entry_from_hsds(o) for o in document]
    assert [o["id"] for o in again] == [o["id"] for o in document]

    rerun = _hub(second, "directory", "import-hsds", str(exported), "--apply")
    assert "5 organizations: 0 create, 0 update, 5 unchanged, 0 reject." in rerun.stdout


def test_a_bad_document_is_refused_organization_by_organization(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    _hub(url, "db", "upgrade")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([
        {"name": "Sans région"},
        {"name": "Bon organisme", "x_maillage": {"region": "06"},
         "services": [{"name": "Emploi", "x_maillage": {"pathways": ["astrology"]}}]},
        {"name": "Maison d'accueil", "x_maillage": {"region": "06"}},
    ]), encoding="utf-8")
    done = _hub(url, "directory", "import-hsds", str(path), "--apply")
    assert "organizations[0]: reject «Sans région» — organizations[0] has no Québec region" \
        in done.stdout
    assert "organizations[1]: reject" in done.stdout and "astrology" in done.stdout
    assert "organizations[2]: create «Maison d'accueil»" in done.stdout
    path.write_text("{not json", encoding="utf-8")
    refused = run_hub({**os.environ, "HUB_DATABASE_URL": url}, "directory", "import-hsds",
                      str(path))
    assert refused.returncode == 2 and "is not JSON" in refused.stderr
