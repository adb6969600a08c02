"""An organization's admin uploads the counsellors' grid in the portal (issue 20): the same
dry run as `hub directory import --as`, said in French, row by row, then the same import;
entries of other organizations stay as they keep them; the notes are the admin's
organization's."""

from __future__ import annotations

import io
import re
import secrets
import uuid
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from hub.db import db
from hub.directory.organizations import Organization
from hub.directory.relationships import current_note
from tests.portal import Person, make_organization, make_user, text_of

DATA = Path(__file__).parent.parent / "data" / "directory"


def grid_with_word(word: str) -> bytes:
    """The regional grid (Windows-1252, semicolons) with the test's word in each name."""
    text = (DATA / "grille_regionale.csv").read_bytes().decode("cp1252")
    lines = text.split("\r\n")
    for index, line in enumerate(lines[3:], start=3):
        cells = line.split(";")
        if len(cells) > 1 and cells[1]:
            cells[1] = f"{cells[1]} {word}"
            lines[index] = ";".join(cells)
    return "\r\n".join(lines).encode("cp1252")


def upload(person: Person, organization_id: uuid.UUID, content: bytes, name: str):  # noqa: ANN201
    return person.post(f"/admin/{organization_id}/grid",
                       {"grid": (io.BytesIO(content), name)})


def token_of(page: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found is not None, "no apply form"
    return found.group(1)


def stored(app: Flask, word: str) -> dict[str, Organization]:
    with app.app_context(), db.job_session() as session:
        found = session.scalars(select(Organization)
                                .where(Organization.name.like(f"% {word}"))).all()
        for organization in found:
            session.expunge(organization)
        return {o.name.removesuffix(f" {word}"): o for o in found}


def test_an_admin_sees_the_dry_run_in_french_then_imports(app: Flask) -> None:
    word = secrets.token_hex(3)
    own = make_organization(app, name=f"Carrefour importateur {secrets.token_hex(3)}")
    admin = Person.logged_in(app, make_user(app, own, "org_admin"))
    # An entry its organization keeps, already in the directory under a grid's name.
    kept = make_organization(app, kind="regional_partner", region="05",
                             name=f"Ville de Sherbrooke {word}")

    form = admin.get(f"/admin/{own.id}/grid")
    assert form.status_code == 200 and "Importer une grille de partenaires" in text_of(form)

    dry = upload(admin, own.id, grid_with_word(word), "grille.csv")
    assert dry.status_code == 200, text_of(dry)
    text = text_of(dry)
    assert ("13 lignes : 9 fiches seraient créées, 1 modifiées, 0 inchangées, 1 fusionnées "
            "avec une autre ligne, 2 refusées. Rien n’est encore enregistré.") in text
    assert "type : Organisme public (le nom dit « cisss »)" in text
    assert "« lucie.gagnon@example » n’est pas une adresse courriel : laissée de côté" in text
    assert ("même organisme et même région qu’à la ligne 4 : fusionnée avec elle") in text
    assert "« Atlantide » n’est pas une région administrative du Québec" in text
    assert "type à confirmer : une importation ne crée jamais d’instance de concertation" in text
    assert "Type à confirmer (inscrit comme « Autre organisme »), lignes : 11, 14." in text
    assert stored(app, word).keys() == {"Ville de Sherbrooke"}  # nothing written yet

    applied = admin.post(f"/admin/{own.id}/grid/apply",
                         {"token": token_of(dry.get_data(as_text=True))})
    assert applied.status_code == 200
    assert "9 fiches créées" in text_of(applied)
    entries = stored(app, word)
    assert len(entries) == 10
    assert entries["CISSS du Bas-Saint-Laurent"].kind == "public_institution"
    # The entry another organization keeps is not changed by this admin's grid...
    assert entries["Ville de Sherbrooke"].kind == "regional_partner"
    with app.app_context(), db.job_session() as session:
        # ...but what the admin's organization writes about it is kept, for it alone.
        note = current_note(session, own.id, kept.id)
        assert note is not None and note.collaboration == "Concertation"
        assert current_note(session, kept.id, own.id) is None

    # The same dry run cannot be applied twice.
    again = admin.post(f"/admin/{own.id}/grid/apply",
                       {"token": token_of(dry.get_data(as_text=True))})
    assert again.status_code == 302
    second = upload(admin, own.id, grid_with_word(word), "grille.csv")
    assert ("13 lignes : 0 fiches seraient créées, 0 modifiées, 10 inchangées"
            in text_of(second))


def test_a_wrong_file_is_refused_with_what_to_do(app: Flask) -> None:
    own = make_organization(app)
    admin = Person.logged_in(app, make_user(app, own, "org_admin"))
    pdf = upload(admin, own.id, b"%PDF-1.4", "grille.pdf")
    assert pdf.status_code == 422
    assert "grille.pdf n’est pas un fichier CSV ou XLSX" in text_of(pdf)
    broken = upload(admin, own.id, b"not a zip", "grille.xlsx")
    assert broken.status_code == 422
    assert "grille.xlsx ne se lit pas comme une grille" in text_of(broken)
    missing = admin.post(f"/admin/{own.id}/grid", {})
    assert missing.status_code == 422
    assert "Choisissez le fichier de la grille" in text_of(missing)

    counsellor = Person.logged_in(app, make_user(app, own, "counsellor"))
    assert counsellor.get(f"/admin/{own.id}/grid").status_code == 403
    other_admin = Person.logged_in(app, make_user(app, make_organization(app), "org_admin"))
    assert other_admin.get(f"/admin/{own.id}/grid").status_code == 404


def test_a_file_over_the_limit_says_how_large_it_may_be(app: Flask) -> None:
    own = make_organization(app)
    admin = Person.logged_in(app, make_user(app, own, "org_admin"))
    limit = app.config["MAX_CONTENT_LENGTH"]
    huge = upload(admin, own.id, b"Organisme;R\xe9gion\r\n" + b"x" * limit, "grille.csv")
    assert huge.status_code == 413
    assert "Le fichier dépasse 1 Mo" in text_of(huge)
