"""Reading the counsellors' grid (issue 20): which kind each row gets and why, one case per
rule; what makes a row unusable and what only leaves a cell out; and, for any text at all, no
row ever becomes a coordination body."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.adapters.spreadsheet import read_grid
from hub.directory.grid import (
    FROM_COLUMN,
    FROM_NAME,
    FROM_SERVICES,
    TO_CONFIRM,
    BadCell,
    choose_kind,
    entry_of,
    is_grid_header,
)


@pytest.mark.parametrize(("name", "kind", "evidence"), [
    ("Carrefour jeunesse-emploi de Rimouski-Neigette", "community", "carrefour jeunesse emploi"),
    ("CJE Matapédia", "community", "cje"),
    ("Carrefour d'intégration de la Capitale", "community", "carrefour d integration"),
    ("Coopérative de développement régional du Québec", "cooperative_development",
     "cooperative de developpement regional"),
    ("CDR Bas-Saint-Laurent", "cooperative_development", "cdr"),
    ("CISSS de la Gaspésie", "public_institution", "cisss"),
    ("CIUSSS de l'Estrie — CHUS", "public_institution", "ciusss"),
    ("CLSC de Matane", "public_institution", "clsc"),
    ("MRC des Basques", "public_institution", "mrc"),
    ("Ville de Rimouski", "public_institution", "ville de"),
    ("Municipalité de Saint-Fabien", "public_institution", "municipalite"),
    ("Bureau de Services Québec de Matane", "public_institution", "services quebec"),
    ("Cégep de Sherbrooke", "public_institution", "cegep"),
    ("Centre de services scolaire des Phares", "public_institution",
     "centre de services scolaire"),
    ("Place aux jeunes en région Haute-Gaspésie", "regional_partner", "place aux jeunes"),
    ("Entreprise d'insertion Le Tremplin", "insertion_enterprise", "entreprise d insertion"),
    ("SADC de la Matapédia", "entrepreneurship_agency", "sadc"),
    ("PME MTL Centre-Est", "entrepreneurship_agency", "pme mtl"),
    ("Coop de solidarité Les Jardins", "cooperative_development", "coop"),
    ("Usinage Rioux inc.", "employer", "inc"),
])
def test_a_name_gives_the_kind_by_its_rule(name: str, kind: str, evidence: str) -> None:
    choice = choose_kind(None, name, [])
    assert (choice.kind, choice.rule, choice.evidence) == (kind, FROM_NAME, evidence)
    assert choice.describe() == f"kind {kind} (the name says «{evidence}»)"


@pytest.mark.parametrize(("services", "kind"), [
    (["Plateau de travail"], "insertion_enterprise"),
    (["Démarrage de coopératives"], "cooperative_development"),
    (["Démarrage d'entreprise", "Mentorat"], "entrepreneurship_agency"),
    (["Séjours exploratoires"], "regional_partner"),
    (["Aide à l'emploi"], "community"),
])
def test_services_give_the_kind_when_the_name_says_nothing(services: list[str], kind: str
                                                            ) -> None:
    choice = choose_kind(None, "Les Ateliers du Fleuve", services)
    assert (choice.kind, choice.rule) == (kind, FROM_SERVICES)


def test_a_type_d_organisme_cell_comes_first_and_an_unknown_one_is_to_confirm() -> None:
    stated = choose_kind("Établissement public", "Carrefour jeunesse-emploi", [])
    assert (stated.kind, stated.rule) == ("public_institution", FROM_COLUMN)
    assert choose_kind("community", "Ville de Laval", []).kind == "community"
    unknown = choose_kind("Astrologie", "Les Délices du large", ["Emplois saisonniers"])
    assert (unknown.kind, unknown.rule, unknown.to_confirm) == ("other", TO_CONFIRM, True)
    assert unknown.describe() == ("kind other (kind to confirm: «Astrologie» names no kind we "
                                  "know)")
    # An unknown cell still lets the name speak.
    assert choose_kind("Astrologie", "CLSC de Matane", []).kind == "public_institution"


@pytest.mark.parametrize("stated", ["coordination", "Table de concertation", "Concertation",
                                    "Coordination régionale"])
def test_concertation_never_makes_a_coordination_body(stated: str) -> None:
    choice = choose_kind(stated, "Table de concertation en immigration", ["Concertation"])
    assert (choice.kind, choice.rule, choice.refused_coordination) == ("other", TO_CONFIRM,
                                                                      True)
    assert "never created by an import" in choice.describe()


@given(stated=st.one_of(st.none(), st.text()), name=st.text(),
       services=st.lists(st.text(), max_size=3))
def test_no_text_ever_yields_a_coordination_body(stated: str | None, name: str,
                                                 services: list[str]) -> None:
    assert choose_kind(stated, name, services).kind != "coordination"


@given(name=st.text(min_size=1).filter(lambda t: t.strip()),
       collaboration=st.text(), kind_cell=st.text())
def test_a_named_row_in_a_region_is_never_rejected(name: str, collaboration: str,
                                                   kind_cell: str) -> None:
    entry = entry_of({"Organisme": name, "Région": "Bas-St-Laurent",
                      "Type de collaboration": collaboration or None,
                      "Type d'organisme": kind_cell or None,
                      "Courriel": "pas une adresse", "Dernière validation": "hier"})
    assert entry.region == "01" and entry.kind.kind != "coordination"
    assert entry.collaboration == (collaboration.strip() or None)
    assert any("is not an email address: left out" in w for w in entry.warnings)


def test_only_a_missing_name_or_an_unknown_region_rejects_a_row() -> None:
    with pytest.raises(BadCell, match="organization name is empty"):
        entry_of({"Organisme": "  ", "Région": "Estrie"})
    with pytest.raises(BadCell, match="«Atlantide» is not a Québec administrative region"):
        entry_of({"Organisme": "Maison", "Région": "Atlantide"})
    kept = entry_of({"Organisme": "Maison des familles", "Région": "05", "Capacité": "Peut-être",
                     "Notes": "Très réactive", "Type de collaboration": "Financement"})
    assert kept.capacity is None and kept.warnings == [
        "capacity «Peut-être» is not one of ouvert, liste d'attente, complet: left out"]
    assert (kept.collaboration, kept.notes) == ("Financement", "Très réactive")


def test_the_header_is_the_row_naming_the_grid_s_columns(tmp_path: Path) -> None:
    assert is_grid_header(["Organisme", None, "Région"])
    assert is_grid_header(["Nom de l'organisme", "Type de collaboration"])
    assert not is_grid_header(["Grille des partenaires", "2025"])  # a title line of two cells
    assert not is_grid_header(["Région", "Services"])  # no organization column
    path = tmp_path / "grille.csv"
    path.write_text("Grille des partenaires;mise à jour 2025\n\nRégion;Organisme\n"
                    "Estrie;Ville de Magog\n", encoding="utf-8")
    assert list(read_grid(path, is_grid_header)) == [
        (4, {"Région": "Estrie", "Organisme": "Ville de Magog"})]
    # Without the grid's test, the two-cell title line would be taken for the header.
    assert list(read_grid(path))[0][1] == {"Grille des partenaires": "Région",
                                           "mise à jour 2025": "Organisme"}


def test_a_csv_download_is_an_attachment_excel_reads_without_formulas() -> None:
    from hub.api.common import csv_download

    response = csv_download("regions.csv", ["name", "count"],
                            [["=HYPERLINK(\"x\")", 3], ["Montréal", None]])
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="regions.csv"'
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(text.lstrip("\ufeff")))) == [
        ["name", "count"], ["'=HYPERLINK(\"x\")", "3"], ["Montréal", ""]]
