"""Writes grille_fusionnee.xlsx, a grid in the shape counsellors keep in Excel: a merged title
row, the header on row 3, the region written once in a cell merged down its organizations'
rows, an empty row, Excel date cells, a "Type d'organisme" column beside "Type de
collaboration".  Run it again (`.venv/bin/python tests/data/directory/make_grille_xlsx.py`) to
change the file; the tests read the file as committed.
"""

from datetime import datetime
from pathlib import Path

from openpyxl import Workbook

ROWS = [
    # Région (merged down), Organisme, Type d'organisme, Type de collaboration, Contact, Services,
    # Validé le
    ["Bas-St-Laurent", "Carrefour d'accueil de Rimouski", "Organisme communautaire",
     "Accompagnement à l'arrivée", "Annie Lévesque (intervenante) a.levesque@example.org",
     "Accueil; logement", datetime(2025, 2, 3)],
    [None, "Clinique Santé-Vallée", None, "Référencement santé", "Dr Paul Roy", "Santé",
     None],
    [None, "Table de concertation immigration BSL", "Table de concertation", "Concertation",
     None, None, None],
    [None, "Boulangerie Astro", "Astrologie", "Stages et placement", None, "Emplois",
     datetime(2024, 11, 30)],
    ["Estrie", "CLSC de Magog", None, "Accompagnement psychosocial", None, "Travail social",
     None],
    [None, "Ville de Magog", "Municipalité", "Financement", None, "Accueil municipal", None],
]


def write(path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Partenaires"
    sheet.append(["Grille des partenaires — conseillères et conseillers en emploi"])
    sheet.merge_cells("A1:G1")
    sheet.append([])
    sheet.append(["Région", "Organisme", "Type d'organisme", "Type de collaboration",
                  "Personne-ressource", "Services", "Validé le"])
    for row in ROWS[:4]:
        sheet.append(row)
    sheet.append([])  # an empty row between two regions
    for row in ROWS[4:]:
        sheet.append(row)
    sheet.merge_cells("A4:A7")   # Bas-Saint-Laurent's four rows
    sheet.merge_cells("A9:A10")  # Estrie's two
    for cells in sheet.iter_rows(min_row=4, min_col=7, max_col=7):
        cells[0].number_format = "yyyy-mm-dd"
    workbook.save(path)


if __name__ == "__main__":
    write(Path(__file__).with_name("grille_fusionnee.xlsx"))
